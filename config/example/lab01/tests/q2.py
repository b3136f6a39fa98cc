OK_FORMAT = True

test = {
    'name': 'q2',
    'points': 2,
    'suites': [
        {
            'cases': [
                {'code': '>>> len(temps)\n4', 'hidden': False, 'locked': False},
                {'code': '>>> round(mean_temp, 2)\n18.75', 'hidden': False, 'locked': False},
                {'code': '>>> hottest\n\'Fremont\'', 'hidden': True, 'locked': False},
            ],
            'scored': True,
            'setup': '',
            'teardown': '',
            'type': 'doctest',
        }
    ],
}

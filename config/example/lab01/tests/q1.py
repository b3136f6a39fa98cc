test = {
    'name': 'q1',
    'points': 1,
    'suites': [
        {
            'cases': [
                {'code': '>>> square(3)\n9', 'hidden': False, 'locked': False},
                {'code': '>>> square(-2)\n4', 'hidden': False, 'locked': False},
            ],
            'scored': True,
            'setup': '',
            'teardown': '',
            'type': 'doctest',
        }
    ],
}

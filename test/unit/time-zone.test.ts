import { expect } from 'chai';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspectConfig, loadConfig } from '../../src/config/load.js';
import { gradesCsv, type GradeRow } from '../../src/gradebook/export.js';
import { isTimeZone, localText, offsetText, parseDue, timeHtml } from '../../src/lib/time-zone.js';
import { overTime } from '../../src/web/staff/charts.js';

const WINTER = Date.UTC(2026, 11, 4, 9, 15); // 2026-12-04 09:15 UTC
const SUMMER = Date.UTC(2026, 6, 4, 9, 15); // 2026-07-04 09:15 UTC

describe('course time zones', () => {
  it('knows IANA names and UTC, and refuses others', () => {
    for (const z of ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Etc/GMT+5']) expect(isTimeZone(z), z).to.equal(true);
    for (const z of ['Europe/Pariss', 'CEST+1', '+01:00', '', 'Mars/Olympus', '../etc']) expect(isTimeZone(z), z).to.equal(false);
  });

  it("writes a time on the zone's wall clock, with its offset in summer and winter, and names the zone", () => {
    expect(localText(WINTER, 'Europe/Paris')).to.equal('2026-12-04 10:15');
    expect(localText(SUMMER, 'Europe/Paris')).to.equal('2026-07-04 11:15');
    expect(localText(WINTER, 'America/New_York')).to.equal('2026-12-04 04:15');
    expect(localText(WINTER, 'Asia/Kolkata')).to.equal('2026-12-04 14:45');
    expect(offsetText(WINTER, 'Europe/Paris')).to.equal('+01:00');
    expect(offsetText(SUMMER, 'America/New_York')).to.equal('-04:00');
    expect(offsetText(WINTER, 'UTC')).to.equal('+00:00');
    expect(timeHtml(WINTER, 'Europe/Paris').toString()).to.equal('<time datetime="2026-12-04T09:15:00.000Z">2026-12-04 10:15 Europe/Paris</time>');
    expect(timeHtml(WINTER).toString()).to.equal('<time datetime="2026-12-04T09:15:00.000Z">2026-12-04 09:15 UTC</time>');
    expect(timeHtml(WINTER, 'Europe/Paris', { fixed: true }).toString()).to.include('data-fixed="1"');
    expect(timeHtml(null).toString()).to.equal('');
  });

  it('reads a due date without an offset on the wall clock of the course zone, one with an offset as written', () => {
    expect(parseDue('2026-12-10 23:59', 'Europe/Paris')!.toISOString()).to.equal('2026-12-10T22:59:00.000Z');
    expect(parseDue('2026-07-10T23:59', 'Europe/Paris')!.toISOString()).to.equal('2026-07-10T21:59:00.000Z');
    expect(parseDue('2026-12-10', 'America/New_York')!.toISOString()).to.equal('2026-12-10T05:00:00.000Z');
    expect(parseDue('2026-12-10 23:59', 'UTC')!.toISOString()).to.equal('2026-12-10T23:59:00.000Z');
    expect(parseDue('2026-12-10T23:59:00Z', 'Europe/Paris')!.toISOString()).to.equal('2026-12-10T23:59:00.000Z');
    expect(parseDue('2026-12-10T23:59:00-05:00', 'Europe/Paris')!.toISOString()).to.equal('2026-12-11T04:59:00.000Z');
    // around the clock changes: the hour after the spring change, the day of the autumn one
    expect(parseDue('2026-03-29 03:30', 'Europe/Paris')!.toISOString()).to.equal('2026-03-29T01:30:00.000Z');
    expect(parseDue('2026-10-25 12:00', 'Europe/Paris')!.toISOString()).to.equal('2026-10-25T11:00:00.000Z');
    for (const bad of ['next friday', '2026-02-30 10:00', '2026-12-10 25:00', 'Dec 10 2026', '2026-12-10T23:59:00 EST']) expect(parseDue(bad, 'UTC'), bad).to.equal(undefined);
  });

  it("labels the chart's hours and due date in the zone", () => {
    const hour = 3_600_000;
    const h0 = Math.floor(WINTER / hour);
    const t = overTime([{ bucket: h0, n: 1 }, { bucket: h0 + 1, n: 2 }], hour, new Date(WINTER + 30 * 60_000), 'Europe/Paris');
    expect(t.bars.map((b) => b.label)).to.deep.equal(['12-04 10h', '12-04 11h']);
    expect(t.marker?.label).to.equal('due 2026-12-04 10:45 Europe/Paris');
  });

  it('the CSV keeps UTC times and adds the zone and both times on its wall clock', () => {
    const row = { course: 'c', assignment: 'a', learner: 'u', score: 1, grade: 1, outOf: 1, gradeText: '', points: 1, maxPoints: 1, status: 'graded', submittedAt: new Date(WINTER).toISOString(), gradedAt: '', submission: 's', timeZone: 'Europe/Paris', submittedLocal: localText(WINTER, 'Europe/Paris'), gradedLocal: '' } satisfies GradeRow;
    const [head, line] = gradesCsv([row]).trim().split('\n');
    expect(head!.split(',').slice(-3)).to.deep.equal(['time_zone', 'submitted_local', 'graded_local']);
    expect(line!.split(',').slice(-3)).to.deep.equal(['Europe/Paris', '2026-12-04 10:15', '']);
  });

  describe('in the configuration', () => {
    const write = (course: string[]): string => {
      const dir = mkdtempSync(path.join(tmpdir(), 'gofer-tz-'));
      mkdirSync(path.join(dir, 't'));
      const p = path.join(dir, 'gofer.yaml');
      writeFileSync(p, ['courses:', ...course].join('\n') + '\n');
      return p;
    };

    it('reads due dates in the course zone (UTC when it names none)', () => {
      const config = loadConfig(
        write([
          '  - id: paris', '    timeZone: Europe/Paris', '    assignments:', '      - {id: lab01, tests: t, due: "2026-12-10 23:59"}', '      - {id: lab02, tests: t, due: "2026-12-10T23:59:00Z"}',
          '  - id: plain', '    assignments:', '      - {id: lab01, tests: t, due: "2026-12-10 23:59"}',
        ]),
        {},
      );
      const [paris, plain] = config.courses;
      expect(paris!.timeZone).to.equal('Europe/Paris');
      expect(paris!.assignments.map((a) => a.due?.toISOString())).to.deep.equal(['2026-12-10T22:59:00.000Z', '2026-12-10T23:59:00.000Z']);
      expect(plain!.timeZone).to.equal(undefined);
      expect(plain!.assignments[0]!.due?.toISOString()).to.equal('2026-12-10T23:59:00.000Z');
    });

    it('check-config names a time zone or a due date it cannot read, with its line', () => {
      const zone = inspectConfig(write(['  - id: paris', '    timeZone: Europe/Pariss', '    assignments:', '      - {id: lab01, tests: t}']), {});
      expect(zone.problems.map((x) => [x.line, x.at, x.message])).to.deep.equal([
        [3, 'courses[paris].timeZone', '"Europe/Pariss" is not a time zone name: use an IANA name such as Europe/Paris, America/New_York or UTC'],
      ]);
      const due = inspectConfig(write(['  - id: paris', '    timeZone: Europe/Paris', '    assignments:', '      - id: lab01', '        tests: t', '        due: next friday']), {});
      expect(due.problems.map((x) => [x.line, x.at, x.message])).to.deep.equal([
        [7, 'courses[paris].assignments[lab01].due', `"next friday" is not a date: write 2026-12-10 23:59 (in the course's time zone, Europe/Paris) or 2026-12-10T23:59:00Z`],
      ]);
    });
  });
});

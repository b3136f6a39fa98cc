import { expect } from 'chai';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { barChart, overTime, passRates, scoreHistogram } from '../../src/web/staff/charts.js';
import { ARTIFACTS, launchBrowser } from '../helpers/lti.js';

/** The staff charts for a known data set, drawn by Chromium: the bars on screen are the data. */
describe('Staff charts: SVG bars for a known data set, in Chromium', function () {
  this.timeout(60_000);
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(() => browser?.close());

  const drawn = async (markup: string, name: string) => {
    const page = await browser.newPage({ viewport: { width: 700, height: 400 } });
    await page.setContent(`<!doctype html><html><body>${markup}</body></html>`);
    await page.locator('svg').screenshot({ path: path.join(ARTIFACTS, `chart-${name}.png`) });
    const bars = await page.$$eval('rect.bar', (rs) => rs.map((r) => ({ label: r.getAttribute('data-label'), value: Number(r.getAttribute('data-value')), h: r.getBoundingClientRect().height, x: r.getBoundingClientRect().x })));
    const marker = await page.$$eval('line.marker', (ls) => ls.map((l) => l.getBoundingClientRect().x));
    const rows = await page.$$eval('table.chart-data tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    await page.close();
    return { bars, marker, rows };
  };

  it('a histogram of scores: ten bins, heights in proportion, the same numbers in the table', async () => {
    const scores = [0, 0.05, 0.5, 0.55, 0.59, 0.9, 1, 1];
    const { bars, rows } = await drawn(barChart(scoreHistogram(scores), { id: 'h', title: 'Scores', unit: 'learners' }).toString(), 'histogram');
    expect(bars.map((b) => b.value)).to.deep.equal([2, 0, 0, 0, 0, 3, 0, 0, 0, 3]);
    expect(bars.map((b) => b.label)).to.deep.equal(['0–9%', '10–19%', '20–29%', '30–39%', '40–49%', '50–59%', '60–69%', '70–79%', '80–89%', '90–100%']);
    const full = bars[5]!.h;
    expect(full).to.be.greaterThan(50);
    expect(bars[0]!.h).to.be.closeTo((full * 2) / 3, 0.5);
    expect(bars[1]!.h).to.equal(0);
    expect(bars[9]!.h).to.be.closeTo(full, 0.5);
    for (let i = 1; i < bars.length; i++) expect(bars[i]!.x).to.be.greaterThan(bars[i - 1]!.x);
    expect(rows).to.deep.equal(bars.map((b) => [b.label, String(b.value)]));
  });

  it('pass rates out of 100%, and submissions over time with the due date after its hour', async () => {
    const rates = passRates([{ name: 'q1', passed: 3, total: 4 }, { name: 'q2', passed: 0, total: 4 }, { name: 'q3', passed: 4, total: 4 }]);
    const r = await drawn(barChart(rates, { id: 'p', title: 'Pass rates', unit: '% passing', max: 100 }).toString(), 'pass-rates');
    expect(r.bars.map((b) => [b.label, b.value])).to.deep.equal([['q1', 75], ['q2', 0], ['q3', 100]]);
    expect(r.bars[0]!.h).to.be.closeTo(r.bars[2]!.h * 0.75, 0.5);
    expect(r.rows[0]).to.deep.equal(['q1', '75% (3 of 4)']);

    const hour = 3_600_000;
    const h0 = Date.UTC(2026, 11, 1, 9) / hour;
    const t = overTime([{ bucket: h0, n: 1 }, { bucket: h0 + 2, n: 4 }, { bucket: h0 + 3, n: 2 }], hour, new Date((h0 + 2) * hour + 30 * 60_000));
    const d = await drawn(barChart(t.bars, { id: 't', title: 'Over time', unit: 'submissions', ...(t.marker ? { marker: t.marker } : {}) }).toString(), 'over-time');
    expect(d.bars.map((b) => [b.label, b.value])).to.deep.equal([['12-01 09h', 1], ['12-01 10h', 0], ['12-01 11h', 4], ['12-01 12h', 2]]);
    expect(d.marker).to.have.length(1);
    expect(d.marker[0]!).to.be.greaterThan(d.bars[2]!.x).and.lessThan(d.bars[3]!.x);
  });

  it('an empty chart says so, and text is escaped', async () => {
    const markup = barChart([{ label: '<b>x</b>', value: 1 }], { id: 'e', title: 'A & B', unit: 'n' }).toString();
    expect(markup).to.include('&lt;b&gt;x&lt;/b&gt;').and.include('A &amp; B');
    expect(barChart([], { id: 'z', title: 'Nothing', unit: 'n' }).toString()).to.include('No data yet');
  });
});

import { expect } from 'chai';
import { html } from '../../src/lib/html.js';
import { messagePage, page } from '../../src/lib/page.js';
import { passbackCell, passbackWords, testFeedback } from '../../src/web/fragments.js';

describe('page shell and shared fragments', () => {
  it('the shell escapes the title and keeps the body markup', () => {
    const out = page('a <b> & "c"', html`<p id="x">${'<i>'}</p>`);
    expect(out).to.include('<title>a &lt;b&gt; &amp; &quot;c&quot; · Gofer</title>');
    expect(out).to.include('<h1>a &lt;b&gt; &amp; &quot;c&quot;</h1>');
    expect(out).to.include('<p id="x">&lt;i&gt;</p>');
    expect(messagePage('T', 'add assignment=<id>')).to.include('<p>add assignment=&lt;id&gt;</p>');
  });

  it('per-test feedback escapes names and messages, with points only when asked', () => {
    const tests = [
      { name: 'q<1>', passed: true, points: 1, maxPoints: 1, message: null },
      { name: 'q2', passed: false, points: 0, maxPoints: 2, message: '<script>x</script>' },
    ];
    expect(testFeedback(tests, true).toString()).to.equal('<ul><li>q&lt;1&gt;: passed (1/1)</li><li>q2: failed (0/2)<pre>&lt;script&gt;x&lt;/script&gt;</pre></li></ul>');
    expect(testFeedback(tests, false).toString()).to.equal('<ul><li>q&lt;1&gt;: passed</li><li>q2: failed<pre>&lt;script&gt;x&lt;/script&gt;</pre></li></ul>');
    expect(testFeedback([], false).toString()).to.equal('<ul></ul>');
  });

  it('passback state in words, and for staff with its detail escaped', () => {
    expect(passbackWords(undefined, null)).to.equal('');
    expect(passbackWords({ status: 'sent', detail: null }, null)).to.equal('sent to edX');
    expect(passbackWords({ status: 'sent', detail: null }, { certain: true })).to.equal('sent to edX, which will not record it (see above)');
    expect(passbackWords({ status: 'sent', detail: null }, { certain: false })).to.equal('sent to edX, which may not record it (see above)');
    expect(passbackWords({ status: 'late', detail: null }, { certain: true })).to.equal('not sent: submitted after the deadline');
    expect(passbackWords({ status: 'odd', detail: null }, null)).to.equal('odd');
    expect(passbackCell({ status: 'failed', detail: 'a<b' }).toString()).to.equal('failed<br><small>a&lt;b</small>');
    expect(passbackCell(undefined).toString()).to.equal('');
  });
});

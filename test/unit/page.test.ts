import { expect } from 'chai';
import { html } from '../../src/lib/html.js';
import { messagePage, page } from '../../src/lib/page.js';
import { passbackCell } from '../../src/web/fragments.js';

describe('page shell and shared fragments', () => {
  it('the shell escapes the title and keeps the body markup', () => {
    const out = page('a <b> & "c"', html`<p id="x">${'<i>'}</p>`);
    expect(out).to.include('<title>a &lt;b&gt; &amp; &quot;c&quot; · Gofer</title>');
    expect(out).to.include('<h1>a &lt;b&gt; &amp; &quot;c&quot;</h1>');
    expect(out).to.include('<p id="x">&lt;i&gt;</p>');
    expect(messagePage('T', 'add assignment=<id>')).to.include('<p>add assignment=&lt;id&gt;</p>');
  });

  it('passback state for staff, with its detail escaped', () => {
    expect(passbackCell({ status: 'failed', detail: 'a<b' }).toString()).to.equal('failed<br><small>a&lt;b</small>');
    expect(passbackCell(undefined).toString()).to.equal('');
  });
});

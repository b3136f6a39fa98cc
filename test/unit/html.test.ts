import { expect } from 'chai';
import { escapeHtml, html, joinHtml, unsafeRaw } from '../../src/lib/html.js';

describe('html templates', () => {
  it('escape every interpolated text, in text and in attributes', () => {
    const hostile = `<script>alert("x")</script>&'`;
    const out = html`<p title="${hostile}">${hostile}</p>`.toString();
    expect(out).to.equal(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</p>',
    );
    expect(out).not.to.include('<script>');
  });

  it('keep nested fragments as markup and join arrays', () => {
    const rows = ['a<b', 'c'].map((x) => html`<li>${x}</li>`);
    expect(html`<ul>${rows}</ul>`.toString()).to.equal('<ul><li>a&lt;b</li><li>c</li></ul>');
  });

  it('render null, undefined and false as nothing, and numbers as text', () => {
    expect(html`${null}${undefined}${false}${0}${3n}`.toString()).to.equal('03');
  });

  it('pass trusted markup only when asked, and escape separators', () => {
    expect(html`${unsafeRaw('<b>x</b>')}`.toString()).to.equal('<b>x</b>');
    expect(joinHtml([html`<i>1</i>`, '2<'], ' & ').toString()).to.equal('<i>1</i> &amp; 2&lt;');
    expect(escapeHtml(undefined)).to.equal('');
  });
});

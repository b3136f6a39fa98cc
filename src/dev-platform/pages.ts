import { html, joinHtml, type Html } from '../lib/html.js';
import { messagePage, page } from '../lib/page.js';
import type { PlatformContext } from './context.js';
import type { DevComponent, DevUser } from './types.js';

/**
 * The course as a person sees it in a browser: components with launch links for every user,
 * and the gradebook. Plain HTML so browser-driven tests can find links by their text.
 */
export function coursePage(ctx: PlatformContext): string {
  const sections = joinHtml(
    ctx.components.map((c) => componentSection(ctx, c)),
    '\n',
  );
  return page(
    ctx.course.title,
    html`<p>Course <code>${ctx.course.key}</code> on the development LTI platform (behaves like Open edX). Issuer <code>${ctx.issuer}</code>.</p>
<p><a href="/gradebook">Gradebook</a></p>
${sections}`,
  );
}

function componentSection(ctx: PlatformContext, c: DevComponent): Html {
  const ep = ctx.endpoints(c);
  const launches = joinHtml(
    ctx.users.map((u) => {
      const unit = unitPath(c, u, 'resource');
      return html`<li><a href="${unit}">Launch as ${u.username}</a> (${roleLabel(u)}) · <a href="${ctx.launchStartUrl(u.username, c.usageKey, 'resource')}" target="_blank" rel="noopener">new window</a></li>`;
    }),
    '\n',
  );
  const staff = ctx.users.find((u) => u.role === 'staff' || u.role === 'admin');
  const deepLink =
    c.deepLinking && staff
      ? html`<p><a href="${unitPath(c, staff, 'deep-link')}">Deep link as staff</a> (${staff.username}) · <a href="${ctx.launchStartUrl(staff.username, c.usageKey, 'deep-link')}" target="_blank" rel="noopener">new window</a></p>`
      : '';
  const links = ctx.deepLinks.get(c.configId);
  const linked = links ? html`<p>Deep-linked content: <code>${JSON.stringify(links.items)}</code></p>` : '';
  return html`<section>
<h2>${c.name}</h2>
<ul class="launches">
${launches}
</ul>
${deepLink}${linked}
<details><summary>LTI details of this component</summary>
<table>
<tr><th>Usage key</th><td><code>${c.usageKey}</code></td></tr>
<tr><th>Graded</th><td>${c.graded ? html`yes, weight ${c.weight}` : 'no (scores are stored, never published)'}</td></tr>
<tr><th>Due</th><td>${c.due ? c.due.toISOString() : 'none'}${c.due ? (c.acceptGradesPastDue ? ' (grades accepted past due)' : ' (grades past due are not published)') : ''}</td></tr>
<tr><th>Custom parameters</th><td><code>${c.custom.join(' ')}</code></td></tr>
<tr><th>AGS mode</th><td>${c.agsMode}</td></tr>
<tr><th>Client id</th><td><code>${c.clientId}</code></td></tr>
<tr><th>Deployment id</th><td><code>1</code></td></tr>
<tr><th>Auth endpoint</th><td><code>${ep.authUrl}</code></td></tr>
<tr><th>Token endpoint</th><td><code>${ep.tokenUrl}</code></td></tr>
<tr><th>Keyset</th><td><code>${ep.keysetUrl}</code></td></tr>
<tr><th>Tool login / launch / keyset</th><td><code>${c.tool.loginUrl}</code><br><code>${c.tool.launchUrl}</code><br><code>${c.tool.keysetUrl}</code></td></tr>
</table>
</details>
</section>`;
}

/** The unit page: edX's default presentation, the tool in an iframe inside the course page. */
export function unitPage(ctx: PlatformContext, c: DevComponent, u: DevUser, kind: 'resource' | 'deep-link'): string {
  const src = ctx.launchStartUrl(u.username, c.usageKey, kind);
  return page(
    c.name,
    html`<p><a href="/">${ctx.course.title}</a> › ${c.name} · viewing as <strong>${u.username}</strong> (${roleLabel(u)})${kind === 'deep-link' ? ' · deep linking' : ''}</p>
<iframe title="${c.name}" src="${src}" style="width:100%;height:40rem;border:1px solid #ddd"></iframe>
<p><a href="${src}" target="_blank" rel="noopener">Open in a new window</a> (edX's "new window" presentation).</p>`,
  );
}

export function gradebookPage(ctx: PlatformContext): string {
  const grades = new Map(ctx.store.gradebook().map((g) => [`${g.username}\n${g.usageKey}`, g.published]));
  const head = ctx.components.map((c) => html`<th>${c.name}<br><small>weight ${c.weight}${c.graded ? '' : ', not graded'}</small></th>`);
  const rows = joinHtml(
    ctx.users.map((u) => {
      const cells = ctx.components.map((c) => {
        const v = grades.get(`${u.username}\n${c.usageKey}`) ?? null;
        return html`<td>${v === null ? '—' : formatPoints(v)}</td>`;
      });
      return html`<tr><th>${u.username}</th>${cells}</tr>`;
    }),
    '\n',
  );
  const items = joinHtml(
    ctx.store.all().map((i) => {
      const scores = i.scores.length
        ? i.scores.map((s) => {
            const who = ctx.userBySub(s.userId)?.username ?? s.userId;
            return html`<li>${who}: ${s.scoreGiven === null ? 'no score' : html`${s.scoreGiven} / ${s.scoreMaximum}`} · ${s.gradingProgress} · ${s.timestamp}</li>`;
          })
        : html`<li>no scores</li>`;
      return html`<li><code>${i.id}</code> “${i.label}” max ${i.scoreMaximum}, resource link <code>${i.resourceLinkId ?? '—'}</code><ul>${scores}</ul></li>`;
    }),
    '\n',
  );
  return page(
    `Gradebook: ${ctx.course.title}`,
    html`<p><a href="/">Back to the course</a></p>
<table>
<tr><th>User</th>${head}</tr>
${rows}
</table>
<p>Values are what edX publishes: the latest score as a fraction of its own scoreMaximum, times the component's weight.
A score of 0 is stored but never published (a known edX bug): a learner whose latest score is 0 keeps the value published before.
Scores for ungraded components, for line items of another block, or arriving past due when the component does not accept late grades are stored and not published.</p>
<h2>Line items and stored scores</h2>
<ul>
${ctx.store.all().length ? items : html`<li>none</li>`}
</ul>`,
  );
}

export function errorPage(title: string, message: string): string {
  return messagePage(title, message);
}

function unitPath(c: DevComponent, u: DevUser, kind: 'resource' | 'deep-link'): string {
  return `/dev/unit?${new URLSearchParams({ block: c.usageKey, user: u.username, kind }).toString()}`;
}

function roleLabel(u: DevUser): string {
  return { learner: 'learner', staff: 'course staff', admin: 'course admin', moderator: 'discussion moderator' }[u.role];
}

function formatPoints(v: number): string {
  return String(Math.round(v * 10_000) / 10_000);
}

import { html, type Html } from '../lib/html.js';
import type { PassbackState } from '../passback/actions.js';

/** The staff's view of a passback state: the status, and why below it. */
export function passbackCell(state: PassbackState | undefined): Html {
  return html`${state?.status ?? ''}${state?.detail ? html`<br><small>${state.detail}</small>` : ''}`;
}

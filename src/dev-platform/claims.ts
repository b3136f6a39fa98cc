import { ConfigError } from '../lib/errors.js';
import type { DevComponent, DevRole, DevUser } from './types.js';

export const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';
export const AGS_CLAIM = 'https://purl.imsglobal.org/spec/lti-ags/claim/endpoint';
export const DL_CLAIM = 'https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings';
export const SCOPE = {
  lineitem: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem',
  lineitemReadonly: 'https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly',
  resultReadonly: 'https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly',
  score: 'https://purl.imsglobal.org/spec/lti-ags/scope/score',
  nrps: 'https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly',
} as const;

/** Every scope edX's token endpoint knows; anything else asked for is dropped without a word. */
export const GRANTABLE_SCOPES: readonly string[] = [SCOPE.lineitemReadonly, SCOPE.lineitem, SCOPE.resultReadonly, SCOPE.score, SCOPE.nrps];

const V = 'http://purl.imsglobal.org/vocab/lis/v2/';
const BASE_ROLES = [`${V}system/person#None`, `${V}institution/person#None`];
const ROLES: Record<DevRole, string[]> = {
  learner: [`${V}membership#Learner`],
  staff: [`${V}membership#Instructor`],
  admin: [`${V}membership#Administrator`, `${V}membership#Instructor`],
  // edX's discussion moderators ("Community TA") are learners who also get the TA sub-role.
  moderator: [`${V}membership#Learner`, `${V}membership/Instructor#TeachingAssistant`],
};

export function rolesFor(role: DevRole): string[] {
  return [...BASE_ROLES, ...ROLES[role]];
}

/** edX lets only course staff and course admins ("instructor") start a deep-linking launch. */
export function mayDeepLink(role: DevRole): boolean {
  return role === 'staff' || role === 'admin';
}

/** Studio's `key=value` list as the custom claim: split at the first `=`, both sides trimmed. */
export function parseCustom(entries: string[]): Record<string, string> {
  const custom: Record<string, string> = {};
  for (const entry of entries) {
    const at = entry.indexOf('=');
    // Studio refuses to save anything but `something=something`.
    if (at <= 0 || at === entry.length - 1) throw new ConfigError(`custom parameter ${JSON.stringify(entry)} is not key=value`);
    custom[entry.slice(0, at).trim()] = entry.slice(at + 1).trim();
  }
  return custom;
}

/** `course-v1:ORG+COURSE+RUN` → ORG, which edX appends to the context title. */
export function courseOrg(courseKey: string): string {
  const m = /^course-v1:([^+]+)\+/.exec(courseKey);
  return m?.[1] ?? courseKey;
}

export interface LaunchClaimInput {
  issuer: string;
  courseKey: string;
  courseTitle: string;
  component: DevComponent;
  user: DevUser;
  kind: 'resource' | 'deep-link';
  nonce: string;
  targetLinkUri: string;
  /** Custom parameters for this launch (the component's, or a deep-linked item's). */
  custom: Record<string, string>;
  lineitemsUrl: string;
  /** The component's first line item, when there is one. */
  lineitemUrl: string | null;
  deepLinkReturnUrl: string;
}

/**
 * The id_token claims (without iat/exp, added when signing), shaped as edX 11.4 builds them.
 * A deep-linking request carries only the core claims: edX leaves out context, custom, launch
 * presentation and AGS there, so a tool must not need them to render its picker.
 */
export function launchClaims(input: LaunchClaimInput): Record<string, unknown> {
  const { component: c, user } = input;
  const claims: Record<string, unknown> = {
    [`${LTI}message_type`]: input.kind === 'deep-link' ? 'LtiDeepLinkingRequest' : 'LtiResourceLinkRequest',
    [`${LTI}version`]: '1.3.0',
    iss: input.issuer,
    aud: c.clientId,
    azp: c.clientId,
    [`${LTI}deployment_id`]: '1',
    [`${LTI}target_link_uri`]: input.targetLinkUri,
    sub: user.sub,
    [`${LTI}roles`]: rolesFor(user.role),
  };
  if (user.sharePii) {
    claims.name = user.name;
    claims.email = user.email;
    claims.preferred_username = user.username;
  }
  // edX sends the usage key only: no title, no description.
  claims[`${LTI}resource_link`] = { id: c.usageKey };
  if (input.kind === 'deep-link') {
    claims[DL_CLAIM] = {
      accept_types: ['ltiResourceLink', 'link', 'html', 'image'],
      accept_presentation_document_targets: ['iframe', 'window', 'embed'],
      accept_multiple: true,
      auto_create: true,
      title: '',
      text: '',
      deep_link_return_url: input.deepLinkReturnUrl,
    };
  } else {
    claims[`${LTI}launch_presentation`] = { document_target: 'iframe' };
    claims[`${LTI}context`] = {
      id: input.courseKey,
      type: ['http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering'],
      title: `${input.courseTitle} - ${courseOrg(input.courseKey)}`,
      label: input.courseKey,
    };
    if (Object.keys(input.custom).length > 0) claims[`${LTI}custom`] = input.custom;
    const programmatic = c.agsMode === 'programmatic';
    claims[AGS_CLAIM] = {
      scope: [programmatic ? SCOPE.lineitem : SCOPE.lineitemReadonly, SCOPE.resultReadonly, SCOPE.score],
      lineitems: input.lineitemsUrl,
      ...(input.lineitemUrl ? { lineitem: input.lineitemUrl } : {}),
    };
  }
  claims.nonce = input.nonce;
  return claims;
}

import { expect } from 'chai';
import { InputError } from '../../src/lib/errors.js';
import { claimsFromLtijs } from '../../src/lti/launch.js';

const AGS = 'https://purl.imsglobal.org/spec/lti-ags/claim/endpoint';

function token(over: Record<string, unknown> = {}, ctx: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'https://edx.example',
    clientId: 'client-1',
    deploymentId: '1',
    user: 'sub-42',
    userInfo: { name: 'Ada', email: 'ada@example.org' },
    platformContext: {
      roles: ['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'],
      context: { id: 'course-v1:X+8x+2026' },
      resource: { id: 'block-1' },
      custom: { assignment: 'lab01' },
      endpoint: { scope: ['https://purl.imsglobal.org/spec/lti-ags/scope/score'], lineitem: 'https://edx.example/li/1' },
      ...ctx,
    },
    ...over,
  };
}

describe('claimsFromLtijs (the launch as ltijs hands it over, validated)', () => {
  it('reads what Gofer needs', () => {
    const c = claimsFromLtijs(token());
    expect(c).to.deep.include({
      issuer: 'https://edx.example',
      clientId: 'client-1',
      deploymentId: '1',
      sub: 'sub-42',
      name: 'Ada',
      email: 'ada@example.org',
      roles: ['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'],
      contextId: 'course-v1:X+8x+2026',
      resourceLinkId: 'block-1',
      custom: { assignment: 'lab01' },
    });
    expect(c.ags).to.deep.equal({ scope: ['https://purl.imsglobal.org/spec/lti-ags/scope/score'], lineitem: 'https://edx.example/li/1' });
    expect(c.raw).to.deep.include({ sub: 'sub-42', name: 'Ada', custom: { assignment: 'lab01' } });
    expect(c.raw[AGS]).to.deep.equal(c.ags);
  });

  it('takes absent optional parts as empty, and a name that is not text as none', () => {
    const c = claimsFromLtijs(token({ userInfo: { name: 7 } }, { roles: undefined, context: undefined, resource: null, custom: undefined, endpoint: undefined }));
    expect(c).to.deep.include({ name: null, email: null, roles: [], contextId: null, resourceLinkId: null, custom: {}, ags: null });
    expect(claimsFromLtijs(token({ platformContext: undefined })).ags).to.equal(null);
  });

  const refused: Array<[string, unknown, RegExp]> = [
    ['no token at all', undefined, /The launch cannot be read: the token: Required/],
    ['no issuer', token({ iss: undefined }), /iss: Required/],
    ['an empty user', token({ user: '' }), /user: String must contain at least 1 character/],
    ['custom parameters that are a list', token({}, { custom: ['assignment=lab01'] }), /platformContext\.custom: Expected object, received array/],
    ['a line item URL that is a number', token({}, { endpoint: { lineitem: 5 } }), /platformContext\.endpoint\.lineitem: Expected string, received number/],
  ];
  for (const [what, t, message] of refused) {
    it(`refuses ${what}, saying what is wrong`, () => {
      expect(() => claimsFromLtijs(t)).to.throw(InputError, message);
    });
  }
});

import { expect } from 'chai';
import { InfrastructureError } from '../../src/lib/errors.js';
import { tokenAnswerSchema } from '../../src/submissions/hub-oauth.js';
import { hubAnswer, hubUserSchema } from '../../src/submissions/identity.js';

describe("the hub's answers, validated", () => {
  it('reads a /user answer, keeping only what Gofer uses', () => {
    const u = hubAnswer(hubUserSchema, JSON.stringify({ kind: 'user', name: 'ada', admin: false, groups: ['g'], scopes: ['access:services'], server: null }), '/user');
    expect(u).to.deep.include({ name: 'ada', admin: false, groups: ['g'], scopes: ['access:services'] });
    expect(hubAnswer(hubUserSchema, '{"name":"bo"}', '/user')).to.deep.include({ name: 'bo' });
  });

  const refused: Array<[string, string, RegExp]> = [
    ['not JSON', '<html>proxy error</html>', /JupyterHub answered \/user with something that is not JSON: "<html>proxy error<\/html>"/],
    ['no name', '{"admin":true}', /JupyterHub answered \/user without a usable name \(Required\)/],
    ['groups that are not a list of names', '{"name":"ada","groups":"g"}', /without a usable groups \(Expected array, received string\)/],
    ['an array', '[]', /without a usable body \(Expected object, received array\)/],
  ];
  for (const [what, body, message] of refused) {
    it(`refuses a /user answer with ${what}, saying so`, () => {
      expect(() => hubAnswer(hubUserSchema, body, '/user')).to.throw(InfrastructureError, message);
    });
  }

  it('wants a token in the OAuth token answer', () => {
    expect(tokenAnswerSchema.safeParse({ access_token: 'abc', token_type: 'Bearer' }).success).to.equal(true);
    expect(tokenAnswerSchema.safeParse({ access_token: '' }).success).to.equal(false);
    expect(tokenAnswerSchema.safeParse({ error: 'invalid_grant' }).success).to.equal(false);
  });
});

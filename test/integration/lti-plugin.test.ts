import { expect } from 'chai';
import { createDecipheriv, createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Db } from '../../src/db/knex.js';
import { silentLogger } from '../../src/lib/logger.js';
import { KnexLtiPlugin } from '../../src/lti/knex-plugin.js';
import { ENGINES, freshDb } from '../helpers/databases.js';

/**
 * The Knex database plugin against the contract ltijs's own MongoDB implementation
 * (node_modules/ltijs/dist/Utils/Database.js) and its callers rely on; see ltijs.md,
 * "Database plugin contract". ltijs itself (a process-wide singleton) is exercised end to end by
 * test/e2e/lti.test.ts, not here.
 */

const T0 = 1_780_000_000_000;
const SECOND = 1000;
const HOUR = 3600 * SECOND;
const ENC = 'gofer-test-encryption-secret-ü';

const PLATFORM_URL = 'https://courses.example.edu';
const PUBLIC_PEM = '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAPUBLICSECRETVALUE\n-----END PUBLIC KEY-----\n';
const PRIVATE_PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAPRIVATESECRETVALUE\n-----END RSA PRIVATE KEY-----\n';
const ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.ACCESSTOKENSECRETVALUE.sig';
const SCOPES = 'https://purl.imsglobal.org/spec/lti-ags/scope/score https://purl.imsglobal.org/spec/lti-ags/scope/lineitem';

type Doc = Record<string, unknown>;

/** ltijs's own Encrypt/Decrypt (they use no instance state; the Provider singleton is not touched). */
interface LtijsCrypto {
  Encrypt(data: string, secret: string): Promise<{ iv: string; data: string }>;
  Decrypt(data: string, iv: string, secret: string): Promise<string>;
}
function ltijsCrypto(): LtijsCrypto {
  const require = createRequire(import.meta.url);
  return (require('ltijs/dist/Utils/Database.js') as { prototype: LtijsCrypto }).prototype;
}

/** Exactly the platform document ltijs's registerPlatform stores. */
function platformDoc(clientId: string, kid: string, url = PLATFORM_URL): Doc {
  return {
    platformName: `edX ${clientId}`,
    platformUrl: url,
    clientId,
    authEndpoint: `${url}/api/lti_consumer/v1/launch/`,
    accesstokenEndpoint: `${url}/api/lti_consumer/v1/token/${clientId}`,
    authorizationServer: undefined,
    kid,
    authConfig: { method: 'JWK_SET', key: `${url}/api/lti_consumer/v1/public_keysets/${clientId}` },
  };
}

/** The idtoken document ltijs stores after a launch, and its query. */
function idToken(user: string, name = 'Ada Lovelace'): { query: Doc; doc: Doc } {
  const query = { iss: PLATFORM_URL, clientId: 'client-1', deploymentId: '1', user };
  const doc = {
    iss: PLATFORM_URL,
    user,
    userInfo: { given_name: name.split(' ')[0], family_name: name.split(' ')[1], name, email: `${user}@example.edu` },
    platformInfo: { guid: 'edx', product_family_code: 'openedx' },
    clientId: 'client-1',
    platformId: 'kid-1',
    deploymentId: '1',
  };
  return { query, doc };
}

function contextToken(contextId: string, user: string, path = '/lti'): { query: Doc; doc: Doc } {
  return {
    query: { contextId, user },
    doc: {
      contextId,
      user,
      context: { id: 'course-v1:MITx+8.01x+2026', label: '8.01x', title: 'Physics' },
      resource: { id: 'block-v1:lab01', title: 'Lab 1' },
      messageType: 'LtiResourceLinkRequest',
      version: '1.3.0',
      path,
      roles: ['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'],
      targetLinkUri: 'https://gofer.example.edu/lti',
      custom: { assignment: 'lab01' },
      endpoint: { lineitem: `${PLATFORM_URL}/lineitems/1`, scope: SCOPES.split(' ') },
    },
  };
}

/** The decrypted documents a Get returns, without the `createdAt` it adds. */
function withoutCreatedAt(docs: Doc[] | false): Doc[] | false {
  return docs && docs.map(({ createdAt: _c, ...rest }) => rest);
}

function aes256cbcDecrypt(dataHex: string, ivHex: string, secret: string): string {
  const key = createHash('sha256').update(secret).digest();
  const decipher = createDecipheriv('aes-256-cbc', key, Buffer.from(ivHex, 'hex'));
  return Buffer.concat([decipher.update(Buffer.from(dataHex, 'hex')), decipher.final()]).toString('utf8');
}

for (const engine of ENGINES) {
  describe(`ltijs database plugin on Knex (${engine})`, function () {
    this.timeout(30_000);
    let db: Db;
    let drop: () => Promise<void>;
    let t: number;
    let plugin: KnexLtiPlugin;

    beforeEach(async () => {
      ({ db, drop } = await freshDb(engine));
      t = T0;
      plugin = new KnexLtiPlugin(db, { now: () => t }, silentLogger());
    });
    afterEach(async () => drop?.());

    it('lists the registered platforms, oldest first, and says whether one is registered', async () => {
      expect(await plugin.hasPlatform()).to.equal(false);
      expect(await plugin.platforms()).to.deep.equal([]);
      await register('client-1', 'kid-1');
      await register('client-2', 'kid-2', 'https://other.example.edu');
      expect((await plugin.platforms()).map((d) => [d.platformUrl, d.clientId])).to.deep.equal([
        [PLATFORM_URL, 'client-1'],
        ['https://other.example.edu', 'client-2'],
      ]);
      expect(await plugin.hasPlatform()).to.equal(true);
      expect(await plugin.hasPlatform(PLATFORM_URL, 'client-1')).to.equal(true);
      expect(await plugin.hasPlatform(PLATFORM_URL, 'client-2'), 'client-2 is registered for the other platform only').to.equal(false);
    });

    async function raw(table: string): Promise<Array<Record<string, unknown>>> {
      return (await db(table).select().orderBy('created_at')) as Array<Record<string, unknown>>;
    }
    async function count(table: string): Promise<number> {
      const row = (await db(table).count({ n: '*' }).first()) as { n: number | string };
      return Number(row.n);
    }
    /** What ltijs's generatePlatformKeyPair + registerPlatform write for one registration. */
    async function register(clientId: string, kid: string, url = PLATFORM_URL): Promise<void> {
      const where = { platformUrl: url, clientId };
      const index = { kid, platformUrl: url, clientId };
      await plugin.Replace(ENC, 'publickey', where, { key: `${PUBLIC_PEM}${kid}`, kid }, index);
      await plugin.Replace(ENC, 'privatekey', where, { key: `${PRIVATE_PEM}${kid}`, kid }, index);
      await plugin.Replace(false, 'platform', where, platformDoc(clientId, kid, url));
    }

    it('sets up and closes like ltijs expects', async () => {
      expect(await plugin.setup()).to.equal(true);
      expect(await plugin.Close()).to.equal(true);
    });

    describe('Get', () => {
      it('answers false, not [], when nothing matches, in every collection', async () => {
        for (const collection of ['platform', 'platformStatus', 'publickey', 'privatekey', 'accesstoken', 'nonce', 'state', 'idtoken', 'contexttoken']) {
          expect(await plugin.Get(false, collection), collection).to.equal(false);
        }
        for (const collection of ['publickey', 'privatekey', 'accesstoken']) {
          expect(await plugin.Get(ENC, collection), collection).to.equal(false);
        }
        expect(await plugin.Get(false, 'platform', { platformUrl: PLATFORM_URL, clientId: 'nobody' })).to.equal(false);
        expect(await plugin.Get(false, 'nonce', { nonce: 'never-seen' })).to.equal(false);
        await register('client-1', 'kid-1');
        expect(await plugin.Get(false, 'platform', { platformUrl: PLATFORM_URL, clientId: 'client-2' })).to.equal(false);
        expect(await plugin.Get(false, 'platform', { kid: 'kid-2' })).to.equal(false);
        expect(await plugin.Get(ENC, 'publickey', { kid: 'kid-2' })).to.equal(false);
        expect(await plugin.Get(ENC, 'accesstoken', { platformUrl: PLATFORM_URL, clientId: 'client-1', scopes: SCOPES })).to.equal(false);
      });

      it('finds platforms by {platformUrl, clientId}, by {platformUrl}, by {kid}, and all of them with no query', async () => {
        await register('client-1', 'kid-1');
        await register('client-2', 'kid-2');
        await register('client-3', 'kid-3', 'https://other.example.org');
        const { authorizationServer: _a, ...expected1 } = platformDoc('client-1', 'kid-1');

        const one = await plugin.Get(false, 'platform', { platformUrl: PLATFORM_URL, clientId: 'client-1' });
        expect(one).to.have.length(1);
        expect((one as Doc[])[0]).to.deep.include(expected1);

        const byUrl = await plugin.Get(false, 'platform', { platformUrl: PLATFORM_URL });
        expect((byUrl as Doc[]).map((p) => p.clientId).sort()).to.deep.equal(['client-1', 'client-2']);

        const byKid = await plugin.Get(false, 'platform', { kid: 'kid-2' });
        expect(byKid).to.have.length(1);
        expect((byKid as Doc[])[0]).to.deep.include({ platformUrl: PLATFORM_URL, clientId: 'client-2', kid: 'kid-2' });

        const all = await plugin.Get(false, 'platform');
        expect((all as Doc[]).map((p) => p.kid).sort()).to.deep.equal(['kid-1', 'kid-2', 'kid-3']);
        expect((all as Doc[]).find((p) => p.kid === 'kid-3')).to.deep.include({ platformUrl: 'https://other.example.org', clientId: 'client-3' });
      });

      it('keeps platformStatus by {id}', async () => {
        expect(await plugin.Replace(false, 'platformStatus', { id: 'kid-1' }, { id: 'kid-1', active: true })).to.equal(true);
        await plugin.Replace(false, 'platformStatus', { id: 'kid-2' }, { id: 'kid-2', active: false });
        expect(withoutCreatedAt(await plugin.Get(false, 'platformStatus', { id: 'kid-1' }))).to.deep.equal([{ id: 'kid-1', active: true }]);
        expect(withoutCreatedAt(await plugin.Get(false, 'platformStatus', { id: 'kid-2' }))).to.deep.equal([{ id: 'kid-2', active: false }]);
        expect(await plugin.Get(false, 'platformStatus', { id: 'kid-3' })).to.equal(false);
      });

      it('keeps a state with its query parameters', async () => {
        const state = encodeURIComponent('a'.repeat(50));
        expect(await plugin.Insert(false, 'state', { state, query: { assignment: 'lab01', lang: 'fr' } })).to.equal(true);
        expect(withoutCreatedAt(await plugin.Get(false, 'state', { state }))).to.deep.equal([{ state, query: { assignment: 'lab01', lang: 'fr' } }]);
        expect(await plugin.Get(false, 'state', { state: 'b'.repeat(50) })).to.equal(false);
      });

      it('keeps a nonce', async () => {
        expect(await plugin.Insert(false, 'nonce', { nonce: 'n-1' })).to.equal(true);
        expect(withoutCreatedAt(await plugin.Get(false, 'nonce', { nonce: 'n-1' }))).to.deep.equal([{ nonce: 'n-1' }]);
        expect(await plugin.Get(false, 'nonce', { nonce: 'n-2' })).to.equal(false);
      });

      it('keeps an idtoken by {iss, clientId, deploymentId, user}', async () => {
        const ada = idToken('ada');
        const bob = idToken('bob', 'Bob Builder');
        await plugin.Replace(false, 'idtoken', ada.query, ada.doc);
        await plugin.Replace(false, 'idtoken', bob.query, bob.doc);
        expect(withoutCreatedAt(await plugin.Get(false, 'idtoken', ada.query))).to.deep.equal([ada.doc]);
        expect(withoutCreatedAt(await plugin.Get(false, 'idtoken', bob.query))).to.deep.equal([bob.doc]);
        expect(await plugin.Get(false, 'idtoken', { ...ada.query, deploymentId: '2' })).to.equal(false);
        expect(await plugin.Get(false, 'idtoken', { ...ada.query, clientId: 'client-2' })).to.equal(false);
        expect(await plugin.Get(false, 'idtoken', { ...ada.query, iss: 'https://other.example.org' })).to.equal(false);
        // what Provider.js does with it: a JSON copy
        expect(JSON.parse(JSON.stringify((await plugin.Get(false, 'idtoken', ada.query) as Doc[])[0]))).to.deep.include(ada.doc);
      });

      it('keeps a contexttoken by {contextId, user}', async () => {
        const a = contextToken('ctx-1', 'ada');
        const b = contextToken('ctx-1', 'bob');
        const c = contextToken('ctx-2', 'ada', '/lti/other');
        for (const x of [a, b, c]) await plugin.Replace(false, 'contexttoken', x.query, x.doc);
        expect(withoutCreatedAt(await plugin.Get(false, 'contexttoken', a.query))).to.deep.equal([a.doc]);
        expect(withoutCreatedAt(await plugin.Get(false, 'contexttoken', b.query))).to.deep.equal([b.doc]);
        expect(withoutCreatedAt(await plugin.Get(false, 'contexttoken', c.query))).to.deep.equal([c.doc]);
        expect(await plugin.Get(false, 'contexttoken', { contextId: 'ctx-2', user: 'bob' })).to.equal(false);
      });

      it('never treats an undefined query value as "any": it matches only documents without that field, like MongoDB', async () => {
        const ada = idToken('ada');
        await plugin.Replace(false, 'idtoken', ada.query, ada.doc);
        expect(await plugin.Get(false, 'idtoken', { ...ada.query, deploymentId: undefined })).to.equal(false);
        await register('client-1', 'kid-1');
        expect(await plugin.Get(ENC, 'privatekey', { kid: undefined })).to.equal(false);
      });

      it('rejects a query by a field that is not indexed rather than matching everything', async () => {
        await plugin.Insert(false, 'nonce', { nonce: 'n-1' });
        let error: unknown;
        await plugin.Get(false, 'nonce', { something: 'else' }).catch((err: unknown) => (error = err));
        expect(error).to.be.instanceOf(Error);
      });
    });

    describe('encrypted collections', () => {
      it('store only the clear index, iv and data, and Get decrypts them with createdAt in epoch ms', async () => {
        await register('client-1', 'kid-1');
        t = T0 + 5 * SECOND;
        await plugin.Replace(ENC, 'accesstoken', { platformUrl: PLATFORM_URL, clientId: 'client-1', scopes: SCOPES },
          { token: { access_token: ACCESS_TOKEN, token_type: 'bearer', expires_in: 3600, scope: SCOPES } },
          { platformUrl: PLATFORM_URL, clientId: 'client-1', scopes: SCOPES });

        const expectations: Array<[string, string, Doc, string]> = [
          ['lti_public_keys', 'publickey', { kid: 'kid-1', platformUrl: PLATFORM_URL, clientId: 'client-1' }, 'PUBLICSECRETVALUE'],
          ['lti_private_keys', 'privatekey', { kid: 'kid-1', platformUrl: PLATFORM_URL, clientId: 'client-1' }, 'PRIVATESECRETVALUE'],
          ['lti_access_tokens', 'accesstoken', { platformUrl: PLATFORM_URL, clientId: 'client-1', scopes: SCOPES }, 'ACCESSTOKENSECRETVALUE'],
        ];
        for (const [table, collection, index, secret] of expectations) {
          const rows = await raw(table);
          expect(rows, table).to.have.length(1);
          const stored = JSON.parse(String(rows[0]!.doc)) as Doc;
          expect(Object.keys(stored).sort(), table).to.deep.equal([...Object.keys(index), 'data', 'iv'].sort());
          expect(stored, table).to.deep.include(index);
          expect(stored.iv, table).to.match(/^[0-9a-f]{32}$/);
          expect(stored.data, table).to.match(/^([0-9a-f]{32})+$/);
          for (const value of Object.values(rows[0]!)) expect(String(value), table).not.to.contain(secret);
          expect(JSON.stringify(rows), table).not.to.contain('BEGIN');
          // the plain Get (ltijs's kid collision check) sees the clear index
          expect(await plugin.Get(false, collection, index), table).to.satisfy((r: Doc[] | false) => r !== false && r.length === 1 && r[0]!.kid === index.kid);
        }

        const pub = (await plugin.Get(ENC, 'publickey', { kid: 'kid-1' })) as Doc[];
        expect(pub).to.deep.equal([{ key: `${PUBLIC_PEM}kid-1`, kid: 'kid-1', createdAt: T0 }]);
        const priv = (await plugin.Get(ENC, 'privatekey', { kid: 'kid-1' })) as Doc[];
        expect(priv).to.deep.equal([{ key: `${PRIVATE_PEM}kid-1`, kid: 'kid-1', createdAt: T0 }]);
        const tokens = (await plugin.Get(ENC, 'accesstoken', { platformUrl: PLATFORM_URL, clientId: 'client-1', scopes: SCOPES })) as Doc[];
        expect(tokens).to.deep.equal([{ token: { access_token: ACCESS_TOKEN, token_type: 'bearer', expires_in: 3600, scope: SCOPES }, createdAt: T0 + 5 * SECOND }]);
        expect(tokens[0]!.createdAt).to.be.a('number');
        // ltijs's token cache arithmetic (Platform.platformAccessToken) works on it
        const token = tokens[0]!.token as { expires_in: number };
        expect(((T0 + 60 * SECOND) - (tokens[0]!.createdAt as number)) / 1000 > token.expires_in).to.equal(false);

        // the keyset: every public key, decrypted
        await register('client-2', 'kid-2');
        const keyset = (await plugin.Get(ENC, 'publickey')) as Doc[];
        expect(keyset.map((k) => k.kid).sort()).to.deep.equal(['kid-1', 'kid-2']);
        expect(keyset.every((k) => String(k.key).startsWith(PUBLIC_PEM) && typeof k.createdAt === 'number')).to.equal(true);
      });

      it('use AES-256-CBC with key sha256(secret), hex iv and data: compatible with ltijs Database.Encrypt/Decrypt', async () => {
        const item = { token: { access_token: ACCESS_TOKEN, token_type: 'bearer', expires_in: 3600 } };
        const index = { platformUrl: PLATFORM_URL, clientId: 'client-1', scopes: SCOPES };
        await plugin.Insert(ENC, 'accesstoken', item, index);
        const stored = JSON.parse(String((await raw('lti_access_tokens'))[0]!.doc)) as { iv: string; data: string };

        // decrypted independently with node:crypto
        expect(JSON.parse(aes256cbcDecrypt(stored.data, stored.iv, ENC))).to.deep.equal(item);
        // and by ltijs's own code
        const ltijs = ltijsCrypto();
        expect(JSON.parse(await ltijs.Decrypt(stored.data, stored.iv, ENC))).to.deep.equal(item);
        // a wrong secret does not decrypt
        expect(() => aes256cbcDecrypt(stored.data, stored.iv, 'another secret')).to.throw();

        // a document encrypted by ltijs (as its MongoDB Database would store it) is read back
        const theirs = await ltijs.Encrypt(JSON.stringify({ key: PRIVATE_PEM, kid: 'kid-9' }), ENC);
        await db('lti_private_keys').insert({
          kid: 'kid-9', platform_url: PLATFORM_URL, client_id: 'client-9', created_at: T0,
          doc: JSON.stringify({ kid: 'kid-9', platformUrl: PLATFORM_URL, clientId: 'client-9', ...theirs }),
        });
        expect(await plugin.Get(ENC, 'privatekey', { kid: 'kid-9' })).to.deep.equal([{ key: PRIVATE_PEM, kid: 'kid-9', createdAt: T0 }]);
      });

      it('refuse an encrypted Insert or Replace without its index', async () => {
        const outcomes = await Promise.allSettled([
          plugin.Insert(ENC, 'publickey', { key: PUBLIC_PEM, kid: 'kid-1' }),
          plugin.Replace(ENC, 'publickey', { kid: 'kid-1' }, { key: PUBLIC_PEM, kid: 'kid-1' }),
        ]);
        expect(outcomes.map((o) => o.status)).to.deep.equal(['rejected', 'rejected']);
        expect(await count('lti_public_keys')).to.equal(0);
      });
    });

    describe('Replace', () => {
      it('is an upsert on the query: one document, the second content wins (plain collections)', async () => {
        await plugin.Replace(false, 'platformStatus', { id: 'kid-1' }, { id: 'kid-1', active: false });
        await plugin.Replace(false, 'platformStatus', { id: 'kid-1' }, { id: 'kid-1', active: true });
        expect(await count('lti_platform_status')).to.equal(1);
        expect(withoutCreatedAt(await plugin.Get(false, 'platformStatus', { id: 'kid-1' }))).to.deep.equal([{ id: 'kid-1', active: true }]);

        const first = idToken('ada', 'Ada Lovelace');
        const second = idToken('ada', 'Ada Byron');
        await plugin.Replace(false, 'idtoken', first.query, first.doc);
        t = T0 + HOUR;
        await plugin.Replace(false, 'idtoken', second.query, second.doc);
        expect(await count('lti_id_tokens')).to.equal(1);
        expect(withoutCreatedAt(await plugin.Get(false, 'idtoken', first.query))).to.deep.equal([second.doc]);
        // the replacement is a new document: its lifetime starts again
        t = T0 + 24 * HOUR + SECOND;
        expect(withoutCreatedAt(await plugin.Get(false, 'idtoken', first.query))).to.deep.equal([second.doc]);

        const c1 = contextToken('ctx-1', 'ada', '/lti/a');
        const c2 = contextToken('ctx-1', 'ada', '/lti/b');
        await plugin.Replace(false, 'contexttoken', c1.query, c1.doc);
        await plugin.Replace(false, 'contexttoken', c2.query, c2.doc);
        expect(await count('lti_context_tokens')).to.equal(1);
        expect(withoutCreatedAt(await plugin.Get(false, 'contexttoken', c1.query))).to.deep.equal([c2.doc]);

        await plugin.Replace(false, 'platform', { platformUrl: PLATFORM_URL, clientId: 'client-1' }, platformDoc('client-1', 'kid-1'));
        await plugin.Replace(false, 'platform', { platformUrl: PLATFORM_URL, clientId: 'client-1' }, { ...platformDoc('client-1', 'kid-1'), platformName: 'Renamed' });
        expect(await count('lti_platforms')).to.equal(1);
        expect((await plugin.Get(false, 'platform', { kid: 'kid-1' }) as Doc[])[0]).to.include({ platformName: 'Renamed' });
      });

      it('is an upsert on the query for encrypted collections too, with their index', async () => {
        // ltijs regenerating a platform's key pair: same {platformUrl, clientId}, a new kid
        await register('client-1', 'kid-old');
        await register('client-1', 'kid-new');
        for (const table of ['lti_public_keys', 'lti_private_keys', 'lti_platforms']) expect(await count(table), table).to.equal(1);
        expect(await plugin.Get(ENC, 'privatekey', { kid: 'kid-old' })).to.equal(false);
        expect(withoutCreatedAt(await plugin.Get(ENC, 'privatekey', { kid: 'kid-new' }))).to.deep.equal([{ key: `${PRIVATE_PEM}kid-new`, kid: 'kid-new' }]);
        expect((await raw('lti_public_keys'))[0]).to.include({ kid: 'kid-new', platform_url: PLATFORM_URL, client_id: 'client-1' });

        // a new access token for the same scopes replaces the cached one, and its age restarts
        const query = { platformUrl: PLATFORM_URL, clientId: 'client-1', scopes: SCOPES };
        await plugin.Replace(ENC, 'accesstoken', query, { token: { access_token: 'first', expires_in: 3600 } }, query);
        t = T0 + 30 * 60 * SECOND;
        await plugin.Replace(ENC, 'accesstoken', query, { token: { access_token: 'second', expires_in: 3600 } }, query);
        expect(await count('lti_access_tokens')).to.equal(1);
        expect(await plugin.Get(ENC, 'accesstoken', query)).to.deep.equal([{ token: { access_token: 'second', expires_in: 3600 }, createdAt: T0 + 30 * 60 * SECOND }]);
        // other scopes are another document
        const other = { ...query, scopes: 'https://purl.imsglobal.org/spec/lti-ags/scope/score' };
        await plugin.Replace(ENC, 'accesstoken', other, { token: { access_token: 'third', expires_in: 3600 } }, other);
        expect(await count('lti_access_tokens')).to.equal(2);
        expect(withoutCreatedAt(await plugin.Get(ENC, 'accesstoken', query))).to.deep.equal([{ token: { access_token: 'second', expires_in: 3600 } }]);
      });

      it('ends with exactly one document after 10 concurrent Replace calls of the same idtoken key', async () => {
        const names = Array.from({ length: 10 }, (_, i) => `Ada Number${i}`);
        const outcomes = await Promise.allSettled(names.map((name) => {
          const { query, doc } = idToken('ada', name);
          return plugin.Replace(false, 'idtoken', query, doc);
        }));
        expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).to.deep.equal([]);
        expect(await count('lti_id_tokens')).to.equal(1);
        const got = (await plugin.Get(false, 'idtoken', idToken('ada').query)) as Doc[];
        expect(got).to.have.length(1);
        expect(names).to.include((got[0]!.userInfo as { name: string }).name);
      });

      it('keeps concurrent Replace calls of different keys apart', async () => {
        const users = Array.from({ length: 10 }, (_, i) => `user-${i}`);
        await Promise.all(users.map((u) => plugin.Replace(false, 'idtoken', idToken(u).query, idToken(u).doc)));
        expect(await count('lti_id_tokens')).to.equal(10);
        for (const u of users) expect(withoutCreatedAt(await plugin.Get(false, 'idtoken', idToken(u).query))).to.deep.equal([idToken(u).doc]);
      });
    });

    describe('Modify', () => {
      it('changes the given fields of the matching documents only, keeping the rest and the age', async () => {
        const a = contextToken('ctx-1', 'ada', '/lti');
        const b = contextToken('ctx-1', 'bob', '/lti');
        await plugin.Replace(false, 'contexttoken', a.query, a.doc);
        await plugin.Replace(false, 'contexttoken', b.query, b.doc);
        t = T0 + HOUR;
        // Provider.redirect(..., { newResource: true })
        expect(await plugin.Modify(false, 'contexttoken', a.query, { path: '/lti/lab02' })).to.equal(true);
        expect(withoutCreatedAt(await plugin.Get(false, 'contexttoken', a.query))).to.deep.equal([{ ...a.doc, path: '/lti/lab02' }]);
        expect(withoutCreatedAt(await plugin.Get(false, 'contexttoken', b.query))).to.deep.equal([b.doc]);
        expect((await raw('lti_context_tokens')).map((r) => Number(r.created_at))).to.deep.equal([T0, T0]);

        // registerPlatform for a known platform
        await register('client-1', 'kid-1');
        await register('client-2', 'kid-2');
        await plugin.Modify(false, 'platform', { platformUrl: PLATFORM_URL, clientId: 'client-1' }, {
          platformName: 'edX (renamed)', authConfig: { method: 'JWK_SET', key: `${PLATFORM_URL}/new-keyset` },
        });
        const { authorizationServer: _a, ...p1 } = platformDoc('client-1', 'kid-1');
        expect((await plugin.Get(false, 'platform', { kid: 'kid-1' }) as Doc[])[0]).to.deep.include({
          ...p1, platformName: 'edX (renamed)', authConfig: { method: 'JWK_SET', key: `${PLATFORM_URL}/new-keyset` },
        });
        expect((await plugin.Get(false, 'platform', { kid: 'kid-2' }) as Doc[])[0]).to.include({ platformName: 'edX client-2' });

        // Platform.platformActive(false)
        await plugin.Replace(false, 'platformStatus', { id: 'kid-1' }, { id: 'kid-1', active: true });
        await plugin.Modify(false, 'platformStatus', { id: 'kid-1' }, { active: false });
        expect(withoutCreatedAt(await plugin.Get(false, 'platformStatus', { id: 'kid-1' }))).to.deep.equal([{ id: 'kid-1', active: false }]);
      });

      it("follows ltijs's updatePlatformById: Modify(false, 'publickey', {kid}, {platformUrl, clientId}) moves the clear index", async () => {
        await register('client-1', 'kid-1');
        await register('client-2', 'kid-2');
        const moved = { platformUrl: 'https://new.example.edu', clientId: 'client-1b' };
        expect(await plugin.Get(false, 'platform', moved)).to.equal(false);
        await plugin.Modify(false, 'publickey', { kid: 'kid-1' }, moved);
        await plugin.Modify(false, 'privatekey', { kid: 'kid-1' }, moved);
        await plugin.Modify(false, 'platform', { kid: 'kid-1' }, { ...moved, platformName: 'moved' });

        for (const [table, collection, secret] of [['lti_public_keys', 'publickey', PUBLIC_PEM], ['lti_private_keys', 'privatekey', PRIVATE_PEM]] as const) {
          expect(await count(table), table).to.equal(2);
          expect(await plugin.Get(false, collection, { platformUrl: PLATFORM_URL, clientId: 'client-1' }), table).to.equal(false);
          const byIndex = (await plugin.Get(false, collection, moved)) as Doc[];
          expect(byIndex, table).to.have.length(1);
          expect(byIndex[0], table).to.include({ kid: 'kid-1', ...moved });
          const row = (await db(table).where({ kid: 'kid-1' }).first()) as Record<string, unknown>;
          expect(row, table).to.include({ platform_url: moved.platformUrl, client_id: moved.clientId });
          expect(Object.keys(JSON.parse(String(row.doc)) as Doc).sort(), table).to.deep.equal(['clientId', 'data', 'iv', 'kid', 'platformUrl']);
          // the encrypted content is untouched and still decrypts
          expect(withoutCreatedAt(await plugin.Get(ENC, collection, { kid: 'kid-1' })), table).to.deep.equal([{ key: `${secret}kid-1`, kid: 'kid-1' }]);
          // the other platform's key did not move
          expect((await db(table).where({ kid: 'kid-2' }).first() as Record<string, unknown>), table).to.include({ platform_url: PLATFORM_URL, client_id: 'client-2' });
        }
        const platform = (await plugin.Get(false, 'platform', moved)) as Doc[];
        expect(platform).to.have.length(1);
        expect(platform[0]).to.include({ kid: 'kid-1', platformName: 'moved' });
        expect(await plugin.Get(false, 'platform', { platformUrl: PLATFORM_URL, clientId: 'client-1' })).to.equal(false);
      });

      it('resolves and changes nothing when nothing matches', async () => {
        await register('client-1', 'kid-1');
        const before = await raw('lti_platforms');
        expect(await plugin.Modify(false, 'platform', { kid: 'kid-404' }, { platformName: 'x' })).to.equal(true);
        expect(await raw('lti_platforms')).to.deep.equal(before);
      });
    });

    describe('Delete', () => {
      it('removes the matching documents only', async () => {
        await register('client-1', 'kid-1');
        await register('client-2', 'kid-2');
        await plugin.Replace(false, 'platformStatus', { id: 'kid-1' }, { id: 'kid-1', active: true });
        // Platform.delete()
        expect(await plugin.Delete('platform', { platformUrl: PLATFORM_URL, clientId: 'client-1' })).to.equal(true);
        expect(await plugin.Delete('platformStatus', { id: 'kid-1' })).to.equal(true);
        expect(await plugin.Delete('publickey', { kid: 'kid-1' })).to.equal(true);
        expect(await plugin.Delete('privatekey', { kid: 'kid-1' })).to.equal(true);
        expect(await plugin.Get(false, 'platform', { kid: 'kid-1' })).to.equal(false);
        expect(await plugin.Get(false, 'platformStatus', { id: 'kid-1' })).to.equal(false);
        expect(await plugin.Get(ENC, 'publickey', { kid: 'kid-1' })).to.equal(false);
        expect(await plugin.Get(ENC, 'privatekey', { kid: 'kid-1' })).to.equal(false);
        expect((await plugin.Get(false, 'platform') as Doc[]).map((p) => p.kid)).to.deep.equal(['kid-2']);
        expect((await plugin.Get(ENC, 'privatekey') as Doc[]).map((p) => p.kid)).to.deep.equal(['kid-2']);

        // the launch deleting its state
        await plugin.Insert(false, 'state', { state: 's-1', query: {} });
        await plugin.Insert(false, 'state', { state: 's-2', query: {} });
        expect(await plugin.Delete('state', { state: 's-1' })).to.equal(true);
        expect(await plugin.Get(false, 'state', { state: 's-1' })).to.equal(false);
        expect(withoutCreatedAt(await plugin.Get(false, 'state', { state: 's-2' }))).to.deep.equal([{ state: 's-2', query: {} }]);
        // nothing to delete is fine too
        expect(await plugin.Delete('state', { state: 's-1' })).to.equal(true);
      });

      it('never rejects: an unknown collection or a bad query resolves false', async () => {
        // as ltijs calls it, without awaiting: a rejection here would be unhandled
        const unawaited = [
          plugin.Delete('no-such-collection', { state: 's-1' }),
          plugin.Delete('state', { notIndexed: 'x' }),
        ];
        const outcomes = await Promise.allSettled(unawaited);
        expect(outcomes).to.deep.equal([{ status: 'fulfilled', value: false }, { status: 'fulfilled', value: false }]);
      });

      it('never rejects when the database fails either', async () => {
        const broken = await freshDb(engine);
        await broken.drop();
        const orphan = new KnexLtiPlugin(broken.db, { now: () => t }, silentLogger());
        const outcome = await Promise.allSettled([orphan.Delete('state', { state: 's-1' })]);
        expect(outcome).to.deep.equal([{ status: 'fulfilled', value: false }]);
      });

      it("does not delete every key when ltijs cleans up a failed registration with an undefined kid", async () => {
        // Provider.registerPlatform's catch: Delete('publickey', { kid }) where kid may still be undefined
        await register('client-1', 'kid-1');
        await register('client-2', 'kid-2');
        expect(await plugin.Delete('publickey', { kid: undefined })).to.equal(true);
        expect(await plugin.Delete('privatekey', { kid: undefined })).to.equal(true);
        expect(await count('lti_public_keys')).to.equal(2);
        expect(await count('lti_private_keys')).to.equal(2);
        expect(await plugin.Delete('platform', { platformUrl: PLATFORM_URL, clientId: 'client-3' })).to.equal(true);
        expect(await count('lti_platforms')).to.equal(2);
      });
    });

    describe('expiry', () => {
      const cases: Array<{ collection: string; table: string; ttl: number; write: (p: KnexLtiPlugin) => Promise<unknown>; read: (p: KnexLtiPlugin) => Promise<Doc[] | false> }> = [
        {
          collection: 'nonce', table: 'lti_nonces', ttl: 10 * SECOND,
          write: (p) => p.Insert(false, 'nonce', { nonce: 'n-1' }),
          read: (p) => p.Get(false, 'nonce', { nonce: 'n-1' }),
        },
        {
          collection: 'state', table: 'lti_states', ttl: 600 * SECOND,
          write: (p) => p.Insert(false, 'state', { state: 's-1', query: { a: '1' } }),
          read: (p) => p.Get(false, 'state', { state: 's-1' }),
        },
        {
          collection: 'accesstoken', table: 'lti_access_tokens', ttl: 3600 * SECOND,
          write: (p) => {
            const q = { platformUrl: PLATFORM_URL, clientId: 'client-1', scopes: SCOPES };
            return p.Replace(ENC, 'accesstoken', q, { token: { access_token: ACCESS_TOKEN, expires_in: 3600 } }, q);
          },
          read: (p) => p.Get(ENC, 'accesstoken', { platformUrl: PLATFORM_URL, clientId: 'client-1', scopes: SCOPES }),
        },
        {
          collection: 'idtoken', table: 'lti_id_tokens', ttl: 24 * HOUR,
          write: (p) => p.Replace(false, 'idtoken', idToken('ada').query, idToken('ada').doc),
          read: (p) => p.Get(false, 'idtoken', idToken('ada').query),
        },
        {
          collection: 'contexttoken', table: 'lti_context_tokens', ttl: 24 * HOUR,
          write: (p) => p.Replace(false, 'contexttoken', contextToken('ctx-1', 'ada').query, contextToken('ctx-1', 'ada').doc),
          read: (p) => p.Get(false, 'contexttoken', contextToken('ctx-1', 'ada').query),
        },
      ];
      for (const c of cases) {
        it(`hides a ${c.collection} once it is ${c.ttl / SECOND} s old`, async () => {
          await c.write(plugin);
          t = T0 + c.ttl - 1;
          expect(await c.read(plugin)).to.have.length(1);
          expect(await plugin.Get(c.collection === 'accesstoken' ? ENC : false, c.collection)).to.have.length(1);
          t = T0 + c.ttl;
          expect(await c.read(plugin)).to.equal(false);
          expect(await plugin.Get(c.collection === 'accesstoken' ? ENC : false, c.collection)).to.equal(false);
          t = T0 + 365 * 24 * HOUR;
          expect(await c.read(plugin)).to.equal(false);
          // written again, it lives again
          await c.write(plugin);
          expect(await c.read(plugin)).to.have.length(1);
          expect(await count(c.table)).to.equal(1);
        });
      }

      it('never expires platforms, their status or their keys', async () => {
        await register('client-1', 'kid-1');
        await plugin.Replace(false, 'platformStatus', { id: 'kid-1' }, { id: 'kid-1', active: true });
        t = T0 + 10 * 365 * 24 * HOUR;
        expect(await plugin.Get(false, 'platform', { kid: 'kid-1' })).to.have.length(1);
        expect(await plugin.Get(false, 'platformStatus', { id: 'kid-1' })).to.have.length(1);
        expect(await plugin.Get(ENC, 'publickey', { kid: 'kid-1' })).to.have.length(1);
        expect(await plugin.Get(ENC, 'privatekey', { kid: 'kid-1' })).to.have.length(1);
      });

      it('sweeps expired nonces and states on Insert, and a swept nonce may be stored again', async () => {
        await plugin.Insert(false, 'nonce', { nonce: 'n-old' });
        await plugin.Insert(false, 'state', { state: 's-old', query: {} });
        t = T0 + 5 * SECOND;
        await plugin.Insert(false, 'nonce', { nonce: 'n-young' });
        t = T0 + 10 * SECOND;
        // expired, invisible, but still stored until the next Insert
        expect(await count('lti_nonces')).to.equal(2);
        await plugin.Insert(false, 'nonce', { nonce: 'n-new' });
        expect((await raw('lti_nonces')).map((r) => JSON.parse(String(r.doc)).nonce)).to.deep.equal(['n-young', 'n-new']);
        // the same nonce value after it expired is not a replay (ltijs's Get found nothing)
        t = T0 + 20 * SECOND;
        expect(await plugin.Get(false, 'nonce', { nonce: 'n-new' })).to.equal(false);
        expect(await plugin.Insert(false, 'nonce', { nonce: 'n-new' })).to.equal(true);
        expect((await raw('lti_nonces')).map((r) => JSON.parse(String(r.doc)).nonce)).to.deep.equal(['n-new']);

        t = T0 + 600 * SECOND;
        expect(await count('lti_states')).to.equal(1);
        await plugin.Insert(false, 'state', { state: 's-new', query: {} });
        expect((await raw('lti_states')).map((r) => JSON.parse(String(r.doc)).state)).to.deep.equal(['s-new']);
      });
    });

    describe('unique keys', () => {
      it('rejects the same nonce twice, also when two launches race', async () => {
        await plugin.Insert(false, 'nonce', { nonce: 'n-1' });
        let error: unknown;
        await plugin.Insert(false, 'nonce', { nonce: 'n-1' }).catch((err: unknown) => (error = err));
        expect(error).to.be.instanceOf(Error);
        expect(await count('lti_nonces')).to.equal(1);

        const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => plugin.Insert(false, 'nonce', { nonce: 'n-race' })));
        expect(outcomes.filter((o) => o.status === 'fulfilled')).to.have.length(1);
        expect(outcomes.filter((o) => o.status === 'rejected')).to.have.length(4);
        expect(await count('lti_nonces')).to.equal(2);
      });

      it('rejects a second state with the same value', async () => {
        await plugin.Insert(false, 'state', { state: 's-1', query: {} });
        const [outcome] = await Promise.allSettled([plugin.Insert(false, 'state', { state: 's-1', query: { other: '1' } })]);
        expect(outcome!.status).to.equal('rejected');
        expect(withoutCreatedAt(await plugin.Get(false, 'state', { state: 's-1' }))).to.deep.equal([{ state: 's-1', query: {} }]);
      });

      it('rejects two platform registrations with the same kid, and keeps the first intact', async () => {
        await register('client-1', 'kid-1');
        const before = await raw('lti_platforms');
        const outcomes = await Promise.allSettled([
          plugin.Insert(false, 'platform', platformDoc('client-2', 'kid-1')),
          plugin.Replace(false, 'platform', { platformUrl: PLATFORM_URL, clientId: 'client-2' }, platformDoc('client-2', 'kid-1')),
          plugin.Replace(false, 'platform', { platformUrl: 'https://other.example.org', clientId: 'client-1' }, platformDoc('client-1', 'kid-1', 'https://other.example.org')),
          plugin.Insert(false, 'platform', platformDoc('client-1', 'kid-9')),
        ]);
        expect(outcomes.map((o) => o.status)).to.deep.equal(['rejected', 'rejected', 'rejected', 'rejected']);
        expect(await raw('lti_platforms')).to.deep.equal(before);

        // a key pair with a kid that is already taken
        const index = { kid: 'kid-1', platformUrl: PLATFORM_URL, clientId: 'client-2' };
        const [key] = await Promise.allSettled([plugin.Replace(ENC, 'publickey', { platformUrl: PLATFORM_URL, clientId: 'client-2' }, { key: PUBLIC_PEM, kid: 'kid-1' }, index)]);
        expect(key!.status).to.equal('rejected');
        expect(withoutCreatedAt(await plugin.Get(ENC, 'publickey', { kid: 'kid-1' }))).to.deep.equal([{ key: `${PUBLIC_PEM}kid-1`, kid: 'kid-1' }]);
      });
    });
  });
}

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { isPostgres, writeTransaction, type Db } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';

type Doc = Record<string, unknown>;
type Query = Record<string, unknown>;

interface CollectionSpec {
  table: string;
  /** Document fields ltijs queries by, and their columns. */
  columns: Record<string, string>;
  /** How long a document lives (ltijs relied on MongoDB TTL indexes for this). */
  ttlMs?: number;
}

/** ltijs's collections: see docs (ltijs.md, "Database plugin contract"). */
const COLLECTIONS: Record<string, CollectionSpec> = {
  platform: { table: 'lti_platforms', columns: { platformUrl: 'platform_url', clientId: 'client_id', kid: 'kid' } },
  platformStatus: { table: 'lti_platform_status', columns: { id: 'id' } },
  publickey: { table: 'lti_public_keys', columns: { kid: 'kid', platformUrl: 'platform_url', clientId: 'client_id' } },
  privatekey: { table: 'lti_private_keys', columns: { kid: 'kid', platformUrl: 'platform_url', clientId: 'client_id' } },
  accesstoken: { table: 'lti_access_tokens', columns: { platformUrl: 'platform_url', clientId: 'client_id', scopes: 'scopes' }, ttlMs: 3600_000 },
  nonce: { table: 'lti_nonces', columns: { nonce: 'nonce' }, ttlMs: 10_000 },
  state: { table: 'lti_states', columns: { state: 'state' }, ttlMs: 600_000 },
  idtoken: { table: 'lti_id_tokens', columns: { iss: 'iss', clientId: 'client_id', deploymentId: 'deployment_id', user: 'user' }, ttlMs: 24 * 3600_000 },
  contexttoken: { table: 'lti_context_tokens', columns: { contextId: 'context_id', user: 'user' }, ttlMs: 24 * 3600_000 },
};

/**
 * ltijs's database plugin on Knex, so LTI state lives in Gofer's one database (SQLite or
 * PostgreSQL) instead of MongoDB. Honours the contract: an empty Get is `false`; encrypted
 * collections store `{...index, iv, data}` (AES-256-CBC, key sha256(secret)) and Get returns the
 * decrypted object with `createdAt` in epoch ms; expired nonces, states and tokens are invisible
 * and swept; Replace is an upsert on the collection's unique key; Delete never throws.
 */
export class KnexLtiPlugin {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  async setup(): Promise<boolean> {
    return true;
  }

  /** The registered platform documents, oldest first (`gofer platform list`). */
  async platforms(): Promise<Doc[]> {
    const rows = await this.db<{ id: number; doc: string }>('lti_platforms').select('doc').orderBy('id');
    return rows.map((r) => JSON.parse(r.doc) as Doc);
  }

  /** Whether (issuer, client id) is registered; with no arguments, whether any platform is. */
  async hasPlatform(issuer?: string, clientId?: string): Promise<boolean> {
    const q = this.db<{ id: number; platform_url: string; client_id: string }>('lti_platforms').first('id');
    if (issuer !== undefined) q.where({ platform_url: issuer, client_id: clientId });
    return Boolean(await q);
  }

  async Close(): Promise<boolean> {
    return true;
  }

  async Get(key: string | false, collection: string, query?: Query): Promise<Doc[] | false> {
    const spec = specOf(collection);
    const q = this.db(spec.table).select('doc', 'created_at');
    this.where(q, spec, query);
    if (spec.ttlMs) q.where('created_at', '>', this.clock.now() - spec.ttlMs);
    const rows = (await q) as Array<{ doc: string; created_at: string | number }>;
    if (rows.length === 0) return false;
    return rows.map((r) => {
      const doc = JSON.parse(r.doc) as Doc;
      if (!key) return { ...doc, createdAt: new Date(Number(r.created_at)).toISOString() };
      const plain = JSON.parse(decrypt(String(doc.data), String(doc.iv), key)) as Doc;
      return { ...plain, createdAt: Number(r.created_at) };
    });
  }

  async Insert(key: string | false, collection: string, item: Doc, index?: Doc): Promise<boolean> {
    const spec = specOf(collection);
    if (!item || (key && !index)) throw new Error('MISSING_PARAMS');
    const doc = key ? { ...index, ...encrypt(JSON.stringify(item), key) } : item;
    await this.sweep(spec);
    await this.db(spec.table).insert(this.row(spec, doc));
    return true;
  }

  async Replace(key: string | false, collection: string, query: Query, item: Doc, index?: Doc): Promise<boolean> {
    const spec = specOf(collection);
    if (!item || (key && !index)) throw new Error('MISSING_PARAMS');
    const doc: Doc = key ? { ...index, ...encrypt(JSON.stringify(item), key) } : { ...item };
    // the query names the unique key; make sure the stored document carries it
    for (const [field, value] of Object.entries(query)) if (doc[field] === undefined) doc[field] = value;
    const row = this.row(spec, doc);
    // ltijs only ever replaces tokens: expired ones are swept here, not just on Insert
    await this.sweep(spec);
    const replace = () =>
      this.db.transaction(async (trx) => {
        // concurrent replaces of one key (PostgreSQL) take turns; SQLite has one connection
        if (isPostgres(this.db)) await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`${spec.table}:${JSON.stringify(Object.entries(query).sort())}`]);
        const q = trx(spec.table);
        this.where(q, spec, query);
        await q.delete();
        await trx(spec.table).insert(row);
      });
    try {
      await replace();
    } catch (err) {
      // two concurrent replaces of the same key (PostgreSQL): the second one wins on retry
      if (!/unique|duplicate/i.test((err as Error).message)) throw err;
      await replace();
    }
    return true;
  }

  async Modify(key: string | false, collection: string, query: Query, modification: Doc): Promise<boolean> {
    const spec = specOf(collection);
    if (!query || !modification) throw new Error('MISSING_PARAMS');
    await writeTransaction(this.db, async (trx) => {
      const q = trx(spec.table).select('doc', 'created_at');
      this.where(q, spec, query);
      const rows = (await q) as Array<{ doc: string }>;
      for (const r of rows) {
        const doc = JSON.parse(r.doc) as Doc;
        let next: Doc;
        if (key) {
          const plain = JSON.parse(decrypt(String(doc.data), String(doc.iv), key)) as Doc;
          next = { ...doc, ...encrypt(JSON.stringify({ ...plain, ...modification }), key) };
        } else {
          next = { ...doc, ...modification };
        }
        const u = trx(spec.table);
        this.where(u, spec, pick(doc, Object.keys(spec.columns)));
        const { created_at: _c, ...columns } = this.row(spec, next);
        await u.update(columns);
      }
    });
    return true;
  }

  async Delete(collection: string, query: Query): Promise<boolean> {
    // ltijs does not await some of these calls: never let one reject
    try {
      const spec = specOf(collection);
      const q = this.db(spec.table);
      this.where(q, spec, query);
      await q.delete();
      return true;
    } catch (err) {
      this.log.warn('ltijs delete failed', { collection, error: (err as Error).message });
      return false;
    }
  }

  private where(q: ReturnType<Db>, spec: CollectionSpec, query?: Query): void {
    for (const [field, value] of Object.entries(query ?? {})) {
      // like MongoDB, `{field: undefined}` matches documents without the field, never all of them
      if (value === undefined || value === null) q.whereNull(column(spec, field));
      else q.where(column(spec, field), value as string);
    }
  }

  private row(spec: CollectionSpec, doc: Doc): Record<string, unknown> {
    const row: Record<string, unknown> = { doc: JSON.stringify(doc), created_at: this.clock.now() };
    for (const [field, col] of Object.entries(spec.columns)) row[col] = doc[field] ?? null;
    return row;
  }

  private async sweep(spec: CollectionSpec): Promise<void> {
    if (spec.ttlMs) await this.db(spec.table).where('created_at', '<=', this.clock.now() - spec.ttlMs).delete();
  }
}

function specOf(collection: string): CollectionSpec {
  const spec = COLLECTIONS[collection];
  if (!spec) throw new Error(`unknown ltijs collection ${collection}`);
  return spec;
}

function column(spec: CollectionSpec, field: string): string {
  const col = spec.columns[field];
  if (!col) throw new Error(`ltijs queried ${spec.table} by ${field}, which is not an indexed field`);
  return col;
}

function pick(doc: Doc, fields: string[]): Doc {
  return Object.fromEntries(fields.filter((f) => doc[f] !== undefined && doc[f] !== null).map((f) => [f, doc[f]]));
}

function aesKey(secret: string): Buffer {
  return createHash('sha256').update(secret).digest().subarray(0, 32);
}

export function encrypt(data: string, secret: string): { iv: string; data: string } {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', aesKey(secret), iv);
  return { iv: iv.toString('hex'), data: Buffer.concat([cipher.update(data), cipher.final()]).toString('hex') };
}

export function decrypt(data: string, iv: string, secret: string): string {
  const decipher = createDecipheriv('aes-256-cbc', aesKey(secret), Buffer.from(iv, 'hex'));
  return Buffer.concat([decipher.update(Buffer.from(data, 'hex')), decipher.final()]).toString();
}

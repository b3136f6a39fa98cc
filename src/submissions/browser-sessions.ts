import { randomBytes } from 'node:crypto';
import type { Db } from '../db/knex.js';
import { sha256 } from './identity.js';

/** What a session is for; a session of one kind never opens another kind's pages. */
export type SessionKind = 'hub' | 'lti';

/**
 * Sessions of browsers, kept in the database (the `browser_sessions` table's one owner). The
 * browser holds a random id; the table holds its hash, what the session is, and when it ends or
 * was revoked, so every process sees a logout at once.
 */
export class BrowserSessions {
  constructor(private readonly db: Db) {}

  /** A new session; returns the id to hand to the browser. */
  async create(kind: SessionKind, data: object, ttlMs: number, now: number): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    await this.db('browser_sessions').insert({ id_sha256: sha256(id), kind, data: JSON.stringify(data), created_at: now, expires_at: now + ttlMs, revoked_at: null });
    // expired sessions are of no use to anyone: forget them as new ones come
    await this.db('browser_sessions').where('expires_at', '<', now).delete();
    return id;
  }

  /** The session's data, when the id is one of this kind, not expired and not revoked. */
  async get<T extends object>(kind: SessionKind, id: string | undefined, now: number): Promise<T | undefined> {
    if (!id) return undefined;
    const row = await this.db('browser_sessions').where({ id_sha256: sha256(id), kind }).whereNull('revoked_at').where('expires_at', '>', now).first();
    return row ? (JSON.parse(row.data as string) as T) : undefined;
  }

  async revoke(id: string, now: number): Promise<void> {
    await this.db('browser_sessions').where({ id_sha256: sha256(id) }).update({ revoked_at: now });
  }
}

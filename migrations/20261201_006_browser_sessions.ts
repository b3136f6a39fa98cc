import type { Knex } from 'knex';

/**
 * Browser sessions kept on the server (hub logins, LTI page sessions), so logging out revokes a
 * session for every process and a copied cookie stops working. Only the SHA-256 of a session id
 * is stored: a copy of the database opens no session.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('browser_sessions', (t) => {
    t.string('id_sha256', 64).primary();
    t.string('kind', 16).notNullable();
    t.text('data').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable().index();
    t.bigInteger('revoked_at').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('browser_sessions');
}

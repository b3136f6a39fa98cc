import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';

/** The compiled migrations/ folder: the only way the schema changes. */
const DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** Loads migrations from migrations/ as ES modules, in name order. */
export const migrationSource: Knex.MigrationSource<string> = {
  async getMigrations() {
    return readdirSync(DIR)
      .filter((f) => f.endsWith('.js'))
      .sort()
      .map((f) => f.replace(/\.js$/, ''));
  },
  getMigrationName(name) {
    return name;
  },
  async getMigration(name) {
    return (await import(new URL(`${name}.js`, `file://${DIR}`).href)) as Migration;
  },
};

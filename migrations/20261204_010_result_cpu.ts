import type { Knex } from 'knex';

/**
 * Each result keeps the CPU its grading container used (the harness's `timing.cpuMs`, from the
 * container's own cgroup), informational only: null when the harness had no figure.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('results', (t) => {
    t.integer('cpu_ms').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('results', (t) => {
    t.dropColumn('cpu_ms');
  });
}

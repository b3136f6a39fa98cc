import type { Knex } from 'knex';

/**
 * Hosts you can see: each result names the worker and the engine that produced it; a job counts
 * the times an engine failed under it apart from its attempts (an engine failure is never the
 * learner's attempt); each worker process leaves a heartbeat with its engine's state.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('results', (t) => {
    t.string('worker', 100).nullable();
    t.string('engine', 500).nullable();
  });
  await knex.schema.alterTable('grading_jobs', (t) => {
    t.integer('engine_failures').notNullable().defaultTo(0);
  });
  await knex.schema.createTable('worker_heartbeats', (t) => {
    t.string('id', 100).primary();
    t.string('engine', 500).notNullable();
    // up | down
    t.string('engine_state', 10).notNullable();
    t.integer('workers').notNullable();
    t.integer('busy').notNullable();
    t.bigInteger('started_at').notNullable();
    t.bigInteger('seen_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('worker_heartbeats');
  await knex.schema.alterTable('grading_jobs', (t) => {
    t.dropColumn('engine_failures');
  });
  await knex.schema.alterTable('results', (t) => {
    t.dropColumn('worker');
    t.dropColumn('engine');
  });
}

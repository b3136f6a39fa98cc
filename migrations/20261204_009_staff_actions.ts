import type { Knex } from 'knex';

/**
 * What course staff did (regrade, regrade an assignment, resend, override, excuse), who did it
 * and why; and the grades staff set by hand (an override or an excuse) on a submission, each
 * also recorded as a result so it is sent to the platform like any grade.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('staff_actions', (t) => {
    t.increments('id').primary();
    t.string('course', 64).notNullable();
    // regrade | regrade_all | resend | override | excuse
    t.string('kind', 20).notNullable();
    t.string('actor_sub', 500).notNullable();
    t.string('actor_name', 500).nullable();
    t.string('assignment', 64).nullable();
    t.string('owner', 200).nullable();
    t.string('submission_id', 36).nullable();
    /** How many submissions it concerned (regrade_all). */
    t.integer('count').notNullable().defaultTo(1);
    t.text('reason').nullable();
    t.bigInteger('created_at').notNullable();
    t.index(['course', 'created_at']);
    t.index(['course', 'owner']);
  });
  await knex.schema.createTable('grade_overrides', (t) => {
    t.increments('id').primary();
    t.string('submission_id', 36).notNullable().references('id').inTable('submissions');
    t.integer('result_id').notNullable().unique().references('id').inTable('results');
    t.integer('action_id').notNullable().references('id').inTable('staff_actions');
    // override | excuse
    t.string('kind', 10).notNullable();
    /** Fraction 0..1 of the assignment's points. */
    t.double('score').notNullable();
    t.text('reason').notNullable();
    t.bigInteger('created_at').notNullable();
    t.index(['submission_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('grade_overrides');
  await knex.schema.dropTable('staff_actions');
}

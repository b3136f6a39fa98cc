import type { Knex } from 'knex';

/**
 * A grade staff set by hand stands until staff clear it: `cleared_at` and the clearing action
 * (a "clear override", or a newer override of the same submission). While an override of a
 * submission is not cleared, its regrades are recorded as results but change neither the
 * submission's grade nor what is sent to the platform.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('grade_overrides', (t) => {
    t.bigInteger('cleared_at').nullable();
    t.integer('cleared_action_id').nullable().references('id').inTable('staff_actions');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('grade_overrides', (t) => {
    t.dropColumn('cleared_action_id');
    t.dropColumn('cleared_at');
  });
}

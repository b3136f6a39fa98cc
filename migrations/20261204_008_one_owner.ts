import type { Knex } from 'knex';

/**
 * Each table read by its one owner: a passback carries its submission's arrival time (lateness is
 * decided on it) and a grading job its assignment (a worker that cannot grade an assignment skips
 * its jobs), so neither reads `submissions`. Existing rows are filled from their submission.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('passbacks', (t) => {
    t.bigInteger('received_at').nullable();
  });
  await knex.raw('UPDATE passbacks SET received_at = (SELECT s.received_at FROM submissions s WHERE s.id = passbacks.submission_id)');
  await knex.schema.alterTable('grading_jobs', (t) => {
    t.string('course', 64).nullable();
    t.string('assignment', 64).nullable();
  });
  await knex.raw('UPDATE grading_jobs SET course = (SELECT s.course FROM submissions s WHERE s.id = grading_jobs.submission_id), assignment = (SELECT s.assignment FROM submissions s WHERE s.id = grading_jobs.submission_id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('grading_jobs', (t) => {
    t.dropColumn('course');
    t.dropColumn('assignment');
  });
  await knex.schema.alterTable('passbacks', (t) => {
    t.dropColumn('received_at');
  });
}

import type { Knex } from 'knex';

/**
 * A fair queue: each grading job names its learner (the submission's owner) and when it was
 * last claimed, so a claim can take learners in turn (the one served longest ago first) and
 * count the jobs a learner has running, each by an index, without reading submissions.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('grading_jobs', (t) => {
    t.string('owner', 200).nullable();
    t.bigInteger('claimed_at').nullable();
  });
  await knex.raw('UPDATE grading_jobs SET owner = (SELECT s.owner FROM submissions s WHERE s.id = grading_jobs.submission_id)');
  await knex.schema.alterTable('grading_jobs', (t) => {
    t.index(['owner', 'status']);
    t.index(['owner', 'claimed_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('grading_jobs', (t) => {
    t.dropIndex(['owner', 'status']);
    t.dropIndex(['owner', 'claimed_at']);
  });
  await knex.schema.alterTable('grading_jobs', (t) => {
    t.dropColumn('owner');
    t.dropColumn('claimed_at');
  });
}

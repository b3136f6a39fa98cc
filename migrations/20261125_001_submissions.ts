import type { Knex } from 'knex';

/** Submissions, their grading jobs and results, per-test detail, API tokens, and the legacy gradebook view. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('submissions', (t) => {
    t.string('id', 36).primary();
    t.string('owner', 200).notNullable();
    t.string('course', 64).notNullable();
    t.string('assignment', 64).notNullable();
    t.string('section', 200).nullable();
    t.bigInteger('received_at').notNullable();
    t.text('notebook').notNullable();
    t.string('sha256', 64).notNullable();
    // queued | grading | graded | timeout | out_of_memory | invalid_notebook | kernel_died | failed
    t.string('status', 20).notNullable();
    t.double('score').nullable();
    t.double('points').nullable();
    t.double('max_points').nullable();
    t.text('message').nullable();
    t.bigInteger('graded_at').nullable();
    t.index(['owner', 'course', 'assignment', 'sha256']);
    t.index(['owner', 'received_at']);
    t.index(['course', 'assignment']);
  });

  await knex.schema.createTable('grading_jobs', (t) => {
    t.increments('id').primary();
    t.string('submission_id', 36).notNullable().references('id').inTable('submissions');
    // queued | running | done | failed
    t.string('status', 10).notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.integer('max_attempts').notNullable();
    t.bigInteger('run_at').notNullable();
    t.string('locked_by', 100).nullable();
    t.bigInteger('locked_until').nullable();
    t.text('last_error').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.index(['status', 'run_at']);
    t.index(['submission_id']);
  });

  await knex.schema.createTable('results', (t) => {
    t.increments('id').primary();
    t.string('submission_id', 36).notNullable().references('id').inTable('submissions');
    t.integer('job_id').notNullable().unique().references('id').inTable('grading_jobs');
    t.string('status', 20).notNullable();
    t.double('score').notNullable();
    t.double('points').notNullable();
    t.double('max_points').notNullable();
    t.text('message').nullable();
    t.integer('duration_ms').notNullable();
    t.bigInteger('created_at').notNullable();
    t.index(['submission_id']);
  });

  await knex.schema.createTable('result_tests', (t) => {
    t.integer('result_id').notNullable().references('id').inTable('results');
    t.integer('position').notNullable();
    t.string('name', 200).notNullable();
    t.double('points').notNullable();
    t.double('max_points').notNullable();
    t.boolean('passed').notNullable();
    t.boolean('hidden').notNullable();
    t.text('message').nullable();
    t.primary(['result_id', 'position']);
  });

  await knex.schema.createTable('api_tokens', (t) => {
    t.increments('id').primary();
    t.string('owner', 200).notNullable();
    t.string('token_sha256', 64).notNullable().unique();
    t.string('label', 200).nullable();
    t.bigInteger('created_at').notNullable();
  });

  // gofer's gradebook.db shape, for the course staff scripts that read it
  await knex.raw(`
    CREATE VIEW grades AS
    SELECT s.owner AS userid, r.score AS grade, s.section AS section, s.assignment AS lab,
           CAST(r.created_at / 1000 AS TEXT) AS timestamp
    FROM results r JOIN submissions s ON s.id = r.submission_id
    WHERE r.status = 'graded'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP VIEW IF EXISTS grades');
  for (const table of ['api_tokens', 'result_tests', 'results', 'grading_jobs', 'submissions']) {
    await knex.schema.dropTableIfExists(table);
  }
}

import type { Knex } from 'knex';

/**
 * Notebooks move out of the submissions table into their own. A notebook is hundreds of KB; in
 * SQLite every column stored after it in a row (sha256, status, score…) sits behind the
 * notebook's overflow chain, so reading a submission's status read its whole notebook. Lists,
 * the duplicate check, the queue and the gradebook now read small rows only.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('submission_notebooks', (t) => {
    t.string('submission_id', 36).primary().references('id').inTable('submissions');
    t.text('notebook').notNullable();
  });
  await knex.raw('INSERT INTO submission_notebooks (submission_id, notebook) SELECT id, notebook FROM submissions');
  await knex.raw('ALTER TABLE submissions DROP COLUMN notebook');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("ALTER TABLE submissions ADD COLUMN notebook TEXT NOT NULL DEFAULT ''");
  await knex.raw("UPDATE submissions SET notebook = COALESCE((SELECT n.notebook FROM submission_notebooks n WHERE n.submission_id = submissions.id), '')");
  await knex.schema.dropTable('submission_notebooks');
}

import type { Knex } from 'knex';

/**
 * LTI 1.3: ltijs's collections (kept in Gofer's database through the Knex plugin), launch
 * identities and bindings, and the passback outbox.
 */
export async function up(knex: Knex): Promise<void> {
  // --- ltijs collections: indexed columns for the fields ltijs queries by, the document in `doc`
  await knex.schema.createTable('lti_platforms', (t) => {
    t.increments('id').primary();
    t.string('platform_url', 500).notNullable();
    t.string('client_id', 500).notNullable();
    t.string('kid', 200).notNullable().unique();
    t.text('doc').notNullable();
    t.bigInteger('created_at').notNullable();
    t.unique(['platform_url', 'client_id']);
  });
  await knex.schema.createTable('lti_platform_status', (t) => {
    t.string('id', 200).primary();
    t.text('doc').notNullable();
    t.bigInteger('created_at').notNullable();
  });
  for (const table of ['lti_public_keys', 'lti_private_keys']) {
    await knex.schema.createTable(table, (t) => {
      t.increments('id').primary();
      t.string('kid', 200).notNullable().unique();
      t.string('platform_url', 500).nullable();
      t.string('client_id', 500).nullable();
      t.text('doc').notNullable();
      t.bigInteger('created_at').notNullable();
    });
  }
  await knex.schema.createTable('lti_access_tokens', (t) => {
    t.increments('id').primary();
    t.string('platform_url', 500).notNullable();
    t.string('client_id', 500).notNullable();
    t.string('scopes', 1000).notNullable();
    t.text('doc').notNullable();
    t.bigInteger('created_at').notNullable();
    t.unique(['platform_url', 'client_id', 'scopes']);
  });
  await knex.schema.createTable('lti_nonces', (t) => {
    t.increments('id').primary();
    t.string('nonce', 500).notNullable().unique();
    t.text('doc').notNullable();
    t.bigInteger('created_at').notNullable().index();
  });
  await knex.schema.createTable('lti_states', (t) => {
    t.increments('id').primary();
    t.string('state', 500).notNullable().unique();
    t.text('doc').notNullable();
    t.bigInteger('created_at').notNullable().index();
  });
  await knex.schema.createTable('lti_id_tokens', (t) => {
    t.increments('id').primary();
    t.string('iss', 500).notNullable();
    t.string('client_id', 500).notNullable();
    t.string('deployment_id', 200).notNullable();
    t.string('user', 500).notNullable();
    t.text('doc').notNullable();
    t.bigInteger('created_at').notNullable();
    t.unique(['iss', 'client_id', 'deployment_id', 'user']);
  });
  await knex.schema.createTable('lti_context_tokens', (t) => {
    t.increments('id').primary();
    t.string('context_id', 1000).notNullable();
    t.string('user', 500).notNullable();
    t.text('doc').notNullable();
    t.bigInteger('created_at').notNullable();
    t.unique(['context_id', 'user']);
  });

  // --- who a learner is on a platform, and their hub name once linked
  await knex.schema.createTable('identities', (t) => {
    t.increments('id').primary();
    t.string('issuer', 500).notNullable();
    t.string('sub', 500).notNullable();
    t.string('client_id', 500).notNullable();
    t.string('deployment_id', 200).notNullable();
    t.string('hub_user', 200).nullable().index();
    t.string('name', 500).nullable();
    t.string('email', 500).nullable();
    t.text('roles').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['issuer', 'sub']);
  });

  // --- which line item an assignment's grades go to, per platform course and resource link
  await knex.schema.createTable('bindings', (t) => {
    t.increments('id').primary();
    t.string('issuer', 500).notNullable();
    t.string('client_id', 500).notNullable();
    t.string('deployment_id', 200).notNullable();
    t.string('context_id', 500).notNullable();
    t.string('resource_link_id', 500).notNullable();
    t.string('course', 64).notNullable();
    t.string('assignment', 64).notNullable();
    t.string('lineitem_url', 1000).nullable();
    t.string('lineitems_url', 1000).nullable();
    t.text('scopes').notNullable();
    t.bigInteger('end_at').nullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['issuer', 'deployment_id', 'context_id', 'resource_link_id']);
    t.index(['course', 'assignment']);
  });

  // --- the outbox: one row per grade to send; drained by the dispatcher
  await knex.schema.createTable('passbacks', (t) => {
    t.increments('id').primary();
    t.string('submission_id', 36).notNullable().references('id').inTable('submissions');
    t.integer('result_id').notNullable().references('id').inTable('results');
    t.string('owner', 200).notNullable();
    t.string('course', 64).notNullable();
    t.string('assignment', 64).notNullable();
    t.double('score').notNullable();
    /** When the grade was made: the AGS timestamp, so a late retry never overwrites a newer score. */
    t.bigInteger('graded_at').notNullable();
    // waiting (no identity or binding yet) | pending | sent | superseded | failed
    t.string('status', 12).notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.bigInteger('next_attempt_at').notNullable();
    t.string('locked_by', 100).nullable();
    t.bigInteger('locked_until').nullable();
    t.text('last_error').nullable();
    t.bigInteger('sent_at').nullable();
    t.bigInteger('created_at').notNullable();
    t.index(['status', 'next_attempt_at']);
    t.index(['owner', 'course', 'assignment']);
    t.unique(['result_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'passbacks', 'bindings', 'identities', 'lti_context_tokens', 'lti_id_tokens', 'lti_states', 'lti_nonces',
    'lti_access_tokens', 'lti_private_keys', 'lti_public_keys', 'lti_platform_status', 'lti_platforms',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}

import type { Knex } from 'knex';

/**
 * Which learner launched which resource link (a grade goes only to the line items of the
 * components that learner launched), the line item's maximum read at launch, and the deployment
 * ids of platforms added with `gofer platform add`.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('lti_launches', (t) => {
    t.increments('id').primary();
    t.string('issuer', 500).notNullable();
    t.string('sub', 500).notNullable();
    t.integer('binding_id').notNullable().references('id').inTable('bindings');
    t.bigInteger('first_at').notNullable();
    t.bigInteger('last_at').notNullable();
    t.unique(['issuer', 'sub', 'binding_id']);
    t.index(['binding_id']);
  });
  await knex.schema.alterTable('bindings', (t) => {
    t.double('score_maximum').nullable();
  });
  await knex.schema.createTable('platform_deployments', (t) => {
    t.increments('id').primary();
    t.string('issuer', 500).notNullable();
    t.string('deployment_id', 200).notNullable();
    t.unique(['issuer', 'deployment_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('platform_deployments');
  await knex.schema.alterTable('bindings', (t) => {
    t.dropColumn('score_maximum');
  });
  await knex.schema.dropTable('lti_launches');
}

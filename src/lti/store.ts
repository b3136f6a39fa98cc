import type { Db } from '../db/knex.js';

/** A learner (or staff member) as a platform knows them, and their hub name once linked. */
export interface LtiIdentity {
  issuer: string;
  sub: string;
  clientId: string;
  deploymentId: string;
  hubUser: string | null;
  name: string | null;
  email: string | null;
  roles: string[];
}

/** Where an assignment's grades go in one platform course: (platform, deployment, context, resource link) → line item. */
export interface Binding {
  id: number;
  issuer: string;
  clientId: string;
  deploymentId: string;
  contextId: string;
  resourceLinkId: string;
  course: string;
  assignment: string;
  /** null in programmatic mode until the line item is found or created. */
  lineItemUrl: string | null;
  lineItemsUrl: string | null;
  scopes: string[];
  /** The line item's end date (edX: the component's due date), epoch ms. */
  endAt: number | null;
  /** The line item's scoreMaximum as read at launch (edX: the component's weight, truncated); null when unread. */
  scoreMaximum: number | null;
}

/** A learner's launch of one resource link: their grades for its assignment go to its line item. */
export interface LaunchRecord {
  issuer: string;
  sub: string;
  bindingId: number;
}

/** Identities and bindings, fed by launches and read by the passback dispatcher. */
export class LtiStore {
  constructor(private readonly db: Db) {}

  /**
   * Records a launch's identity; the hub name is kept unless a new one is given. A hub name taken
   * from a launch claim (`fromClaim`) is not given to this identity when an identity of another
   * issuer already has it: equal claims from two platforms are two people.
   */
  async saveIdentity(id: Omit<LtiIdentity, 'hubUser'> & { hubUser?: string | null; fromClaim?: boolean }, now: number): Promise<LtiIdentity> {
    if (id.hubUser && id.fromClaim && (await this.db('identities').where({ hub_user: id.hubUser }).whereNot({ issuer: id.issuer }).first())) {
      id = { ...id, hubUser: null };
    }
    const row = {
      issuer: id.issuer,
      sub: id.sub,
      client_id: id.clientId,
      deployment_id: id.deploymentId,
      name: id.name,
      email: id.email,
      roles: JSON.stringify(id.roles),
      updated_at: now,
      ...(id.hubUser ? { hub_user: id.hubUser } : {}),
    };
    await this.db('identities').insert(row).onConflict(['issuer', 'sub']).merge();
    return (await this.identity(id.issuer, id.sub))!;
  }

  async identity(issuer: string, sub: string): Promise<LtiIdentity | undefined> {
    const r = await this.db('identities').where({ issuer, sub }).first();
    return r && toIdentity(r);
  }

  async linkHubUser(issuer: string, sub: string, hubUser: string): Promise<void> {
    await this.db('identities').where({ issuer, sub }).update({ hub_user: hubUser });
  }

  async identitiesOf(hubUser: string): Promise<LtiIdentity[]> {
    return (await this.db('identities').where({ hub_user: hubUser })).map(toIdentity);
  }

  async identities(): Promise<LtiIdentity[]> {
    return (await this.db('identities').orderBy('id')).map(toIdentity);
  }

  async saveBinding(b: Omit<Binding, 'id'>, now: number): Promise<Binding> {
    const row = {
      issuer: b.issuer,
      client_id: b.clientId,
      deployment_id: b.deploymentId,
      context_id: b.contextId,
      resource_link_id: b.resourceLinkId,
      course: b.course,
      assignment: b.assignment,
      lineitems_url: b.lineItemsUrl,
      scopes: JSON.stringify(b.scopes),
      end_at: b.endAt,
      score_maximum: b.scoreMaximum,
      updated_at: now,
      // a declarative launch names the line item; a programmatic one keeps what was found before
      ...(b.lineItemUrl ? { lineitem_url: b.lineItemUrl } : {}),
    };
    await this.db('bindings').insert(row).onConflict(['issuer', 'deployment_id', 'context_id', 'resource_link_id']).merge();
    const r = await this.db('bindings').where({ issuer: b.issuer, deployment_id: b.deploymentId, context_id: b.contextId, resource_link_id: b.resourceLinkId }).first();
    return toBinding(r);
  }

  async bindingsFor(course: string, assignment: string): Promise<Binding[]> {
    return (await this.db('bindings').where({ course, assignment }).orderBy('updated_at', 'desc')).map(toBinding);
  }

  /** Remembers that this learner launched this binding's resource link. */
  async recordLaunch(l: LaunchRecord, now: number): Promise<void> {
    await this.db('lti_launches')
      .insert({ issuer: l.issuer, sub: l.sub, binding_id: l.bindingId, first_at: now, last_at: now })
      .onConflict(['issuer', 'sub', 'binding_id'])
      .merge(['last_at']);
  }

  /** The bindings of an assignment that these identities launched: where their grades for it go. */
  async launchesOf(identities: Array<Pick<LtiIdentity, 'issuer' | 'sub'>>, course: string, assignment: string): Promise<LaunchRecord[]> {
    if (identities.length === 0) return [];
    const rows = await this.db('lti_launches as l')
      .join('bindings as b', 'b.id', 'l.binding_id')
      .where({ 'b.course': course, 'b.assignment': assignment })
      .where((q) => {
        for (const i of identities) q.orWhere({ 'l.issuer': i.issuer, 'l.sub': i.sub });
      })
      .select('l.issuer', 'l.sub', 'l.binding_id');
    return rows.map((r) => ({ issuer: r.issuer as string, sub: r.sub as string, bindingId: Number(r.binding_id) }));
  }

  /** Deployment ids of a platform added with `gofer platform add` (configured platforms list theirs in the configuration). */
  async deploymentIds(issuer: string): Promise<string[]> {
    return (await this.db('platform_deployments').where({ issuer }).orderBy('id')).map((r) => r.deployment_id as string);
  }

  async addDeployments(issuer: string, deploymentIds: string[]): Promise<void> {
    if (deploymentIds.length === 0) return;
    await this.db('platform_deployments').insert(deploymentIds.map((d) => ({ issuer, deployment_id: d }))).onConflict(['issuer', 'deployment_id']).ignore();
  }

  async binding(id: number): Promise<Binding | undefined> {
    const r = await this.db('bindings').where({ id }).first();
    return r && toBinding(r);
  }

  async setLineItem(bindingId: number, url: string | null): Promise<void> {
    await this.db('bindings').where({ id: bindingId }).update({ lineitem_url: url });
  }
}

function toIdentity(r: Record<string, unknown>): LtiIdentity {
  return {
    issuer: r.issuer as string,
    sub: r.sub as string,
    clientId: r.client_id as string,
    deploymentId: r.deployment_id as string,
    hubUser: (r.hub_user as string | null) ?? null,
    name: (r.name as string | null) ?? null,
    email: (r.email as string | null) ?? null,
    roles: JSON.parse(r.roles as string) as string[],
  };
}

function toBinding(r: Record<string, unknown>): Binding {
  return {
    id: Number(r.id),
    issuer: r.issuer as string,
    clientId: r.client_id as string,
    deploymentId: r.deployment_id as string,
    contextId: r.context_id as string,
    resourceLinkId: r.resource_link_id as string,
    course: r.course as string,
    assignment: r.assignment as string,
    lineItemUrl: (r.lineitem_url as string | null) ?? null,
    lineItemsUrl: (r.lineitems_url as string | null) ?? null,
    scopes: JSON.parse(r.scopes as string) as string[],
    endAt: r.end_at === null || r.end_at === undefined ? null : Number(r.end_at),
    scoreMaximum: r.score_maximum === null || r.score_maximum === undefined ? null : Number(r.score_maximum),
  };
}

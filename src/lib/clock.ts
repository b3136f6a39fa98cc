import { randomUUID } from 'node:crypto';

/** Time and ids come from here so tests can control them. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export type IdSource = () => string;
export const uuid: IdSource = () => randomUUID();

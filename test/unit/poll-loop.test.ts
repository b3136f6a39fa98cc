import { expect } from 'chai';
import { PollLoop } from '../../src/lib/poll-loop.js';

const settled = async (p: Promise<void>, ms: number): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('PollLoop', () => {
  it('sleeps the given time when nothing wakes it', async () => {
    const loop = new PollLoop();
    expect(await settled(loop.idle(10_000), 30)).to.equal(false);
    loop.wake();
  });

  it('wake ends every sleep at once', async () => {
    const loop = new PollLoop();
    const a = loop.idle(10_000);
    const b = loop.idle(10_000);
    loop.wake();
    expect(await settled(Promise.all([a, b]).then(() => undefined), 50)).to.equal(true);
  });

  it('a wake while nobody sleeps is forgotten; a nudge is kept for the next idle', async () => {
    const loop = new PollLoop();
    loop.wake();
    expect(await settled(loop.idle(10_000), 30)).to.equal(false);
    loop.wake();
    loop.nudge();
    expect(await settled(loop.idle(10_000), 30)).to.equal(true);
  });

  it('takeNudge reports a nudge once', () => {
    const loop = new PollLoop();
    expect(loop.takeNudge()).to.equal(false);
    loop.nudge();
    expect(loop.takeNudge()).to.equal(true);
    expect(loop.takeNudge()).to.equal(false);
  });
});

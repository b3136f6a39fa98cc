import { expect } from 'chai';
import { HeartbeatStore, type Heartbeat } from '../../src/grading/heartbeats.js';
import { quietHosts, quietHostsHtml } from '../../src/web/quiet-hosts.js';
import { ENGINES, freshDb } from '../helpers/databases.js';

const NOW = 1_780_000_000_000;
const beat = (id: string, seenAt: number): Heartbeat => ({ id, engine: `unix:///run/${id}.sock ABCD`, engineState: 'up', workers: 1, busy: 0, startedAt: NOW - 600_000, seenAt });

for (const engine of ENGINES) {
  describe(`grading hosts that went quiet (${engine})`, function () {
    this.timeout(30_000);

    it('are the heartbeats older than three intervals, and the staff fragment names each with its engine and last-seen time', async () => {
      const { db, drop } = await freshDb(engine);
      try {
        const store = new HeartbeatStore(db);
        await store.beat(beat('fresh', NOW - 1000));
        await store.beat(beat('edge', NOW - 3000));
        await store.beat(beat('quiet', NOW - 3001));
        await store.beat(beat('gone', NOW - 2 * 24 * 3600 * 1000));
        const quiet = await quietHosts(store, NOW, 1000);
        expect(quiet.map((h) => h.id)).to.deep.equal(['quiet']);

        const fragment = quietHostsHtml(quiet, NOW).toString();
        expect(fragment).to.include('id="quiet-hosts"').and.include('<td>quiet</td>').and.include('unix:///run/quiet.sock ABCD');
        expect(fragment).to.include(new Date(NOW - 3001).toISOString()).and.include('(3 s ago)');
        expect(fragment.match(/class="quiet-host"/g)).to.have.length(1);
        expect(quietHostsHtml([], NOW).toString(), 'nothing when every host beats').to.equal('');
        // what a host reports about itself is text, never markup
        expect(quietHostsHtml([beat('<b>x</b>', NOW - 9000)], NOW).toString()).to.include('&lt;b&gt;x&lt;/b&gt;').and.not.include('<b>x</b>');
      } finally {
        await drop();
      }
    });
  });
}

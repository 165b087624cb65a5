import t from 'tap';
import https from 'node:https';
import { startHarness } from './harness.js';

const PARALLEL = 64;

t.test('etsi014-S31 concurrent enc_keys never hand one key to two callers; the pool is never overdrawn', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 40, keyRateBps: 0 } });
  // Separate connections per request, so the requests really overlap on the server.
  const agents = ['gw-a', 'gw-b', 'gw-c'].map(
    (as) => new https.Agent({ keepAlive: true, maxSockets: PARALLEL, ca: h.pki.qkdCa.cert, cert: h.certs[as].cert, key: h.certs[as].key }),
  );
  t.teardown(() => agents.forEach((a) => a.destroy()));
  const plan = Array.from({ length: PARALLEL }, (_, i) => {
    const who = i % 3;
    const [kme, master, slave] = who === 0 ? [0, 'gw-a', 'gw-b'] : who === 1 ? [1, 'gw-b', 'gw-a'] : [1, 'gw-c', 'gw-a'];
    return h.call(kme as 0 | 1, master, 'POST', `/keys/${slave}/enc_keys`, { body: { number: 1 }, agent: agents[who] });
  });
  const results = await Promise.all(plan);
  const ok = results.filter((r) => r.status === 200);
  const exhausted = results.filter((r) => r.status === 503);
  t.equal(ok.length, 40, 'exactly the 40 keys in the pool were handed out');
  t.equal(exhausted.length, PARALLEL - 40, 'the rest got 503');
  const ids = ok.map((r) => r.json.keys[0].key_ID);
  const bytes = ok.map((r) => r.json.keys[0].key);
  t.equal(new Set(ids).size, 40, 'no key_ID twice');
  t.equal(new Set(bytes).size, 40, 'no key twice');
  t.equal(h.sim.stats().storedKeyCount, 0);
  t.equal(h.sim.stats().pendingKeyCount, 40);
});

t.test('etsi014-S31 concurrent dec_keys for the same key_ID succeed exactly once', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  const enc = await h.encKeys('gw-a', 'gw-b', { number: 2 });
  const [k1, k2] = enc.json.keys;
  const agent = new https.Agent({ keepAlive: true, maxSockets: PARALLEL, ca: h.pki.qkdCa.cert, cert: h.certs['gw-b'].cert, key: h.certs['gw-b'].key });
  t.teardown(() => agent.destroy());
  const results = await Promise.all(
    Array.from({ length: PARALLEL }, (_, i) =>
      i % 2 === 0
        ? h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${k1.key_ID}`, { agent })
        : h.call(1, 'gw-b', 'POST', '/keys/gw-a/dec_keys', { body: { key_IDs: [{ key_ID: k1.key_ID }, { key_ID: k2.key_ID }] }, agent }),
    ),
  );
  const ok = results.filter((r) => r.status === 200);
  t.equal(ok.length, 1, 'exactly one winner');
  t.equal(results.filter((r) => r.status === 400).length, PARALLEL - 1, 'everyone else: 400 not found');
  const got = ok[0].json.keys;
  t.ok(got.some((k: { key_ID: string; key: string }) => k.key_ID === k1.key_ID && k.key === k1.key), 'the winner got k1 intact');
  const k2Delivered = h.sim.deliveries.filter((d) => d.side === 'dec' && d.key_ID === k2.key_ID).length;
  t.equal(k2Delivered, got.length === 2 ? 1 : 0, 'k2 delivered only if the winner asked for it (all-or-nothing)');
  t.equal(h.sim.deliveries.filter((d) => d.side === 'dec' && d.key_ID === k1.key_ID).length, 1);
  t.ok(agent.sockets && Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length > 1, 'used several connections');
});

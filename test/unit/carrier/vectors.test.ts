// protocol.md s3.5 rows that a carrier produces: flow_key/flow_iv i2r and the sealed DATA record,
// pinned through CarrierSession.sealRecord (suite 1 and suite 2).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { CarrierSession, defaultCarrierCrypto, type RecvEpoch } from '../../../src/tunnel/core/carrier.js';
import { RECORD_HEADER_LEN, decodeRecordHeader } from '../../../src/tunnel/core/wire/record.js';
import { deriveFlowKeys } from '../../../src/kdf/flow.js';
import { SecretBytes } from '../../../src/util/secret.js';
import { hex, rep } from '../wire/helpers.js';

const flowId = rep(0x77, 16);
const secret = (h: string) => SecretBytes.from(Buffer.from(h, 'hex'));

t.test('s3.5 flow_key i2r / flow_iv i2r', async (t) => {
  const k = deriveFlowKeys(secret('40eadd23bef52e8489bccd569fe00662e39e07c2758af555f9de5cb52b0a40c4'), flowId, 1);
  t.equal(hex(k.key.expose()), '30ec9ee4a921ce731c195676f746c47195a63f95966c5d017d1ac1e9d13d3a3a');
  t.equal(hex(k.iv), '3fbb21ed4aca6486b85e1aee');
  const r = deriveFlowKeys(secret('f8ff96a17680101922d4335b8d6c2b5f220ba7e73e5db772e9e72700faaa8a48'), flowId, 1);
  t.equal(hex(r.key.expose()), '537066566bd71779045e43c1441f373fc17d5a98708c7bcd71bf32f3b0c5d8e7');
  t.equal(hex(r.iv), '315b3c525f0bb0af56e60ae4');
});

// The vector record is DATA with counter 0 under epoch 1, sealed with flow i2r: the first record of
// an exit gateway that is the initiator, answering an OPEN sealed by the responder (flow r2i).
const rows = [
  {
    suite: 1 as const,
    i2r: '40eadd23bef52e8489bccd569fe00662e39e07c2758af555f9de5cb52b0a40c4',
    r2i: 'f8ff96a17680101922d4335b8d6c2b5f220ba7e73e5db772e9e72700faaa8a48',
    sealed: '06590e078e3ebe883d4e5cd5faa61f81992ee3590d',
  },
  {
    suite: 2 as const,
    i2r: '5fb4ea46b3dedd7b5095f0bd46caed6c3e3846f67fe9dac34430078d1543af31',
    r2i: randomBytes(32).toString('hex'), // no r2i row for suite 2; any secret works for the entry's OPEN
    sealed: 'dccf47fc99115635306a97f13d15d82820f3d01128',
  },
];

for (const row of rows) {
  t.test(`s3.5 carrier DATA header and its ciphertext and tag, suite ${row.suite}`, async (t) => {
    const i2r = secret(row.i2r);
    const r2i = secret(row.r2i);
    const entryLookup = (): RecvEpoch => ({ epoch: 1, suite: row.suite, flowSecret: i2r });
    const exitLookup = (): RecvEpoch => ({ epoch: 1, suite: row.suite, flowSecret: r2i });
    const entry = new CarrierSession({ side: 'entry', flowId, recvLookup: entryLookup, crypto: defaultCarrierCrypto });
    const exit = new CarrierSession({ side: 'exit', flowId, recvLookup: exitLookup });
    const open = entry.sealOpen('web', { epoch: 1, suite: row.suite, flowSecret: r2i });
    exit.openRecord(decodeRecordHeader(open), open.subarray(RECORD_HEADER_LEN));
    exit.admit();
    const rec = exit.sealData(Buffer.from('hello'), { epoch: 1, suite: row.suite, flowSecret: i2r });
    t.equal(hex(rec.subarray(0, RECORD_HEADER_LEN)), '0200000000000001000000000000000000000015', 'carrier DATA header');
    t.equal(hex(rec.subarray(RECORD_HEADER_LEN)), row.sealed, 'its ciphertext and tag');
    const ev = entry.openRecord(decodeRecordHeader(rec), rec.subarray(RECORD_HEADER_LEN));
    t.same(ev, { kind: 'data', epoch: 1, bytes: Buffer.from('hello') });
  });
}

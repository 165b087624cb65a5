// protocol.md s3.5: every row of the QGW-KDF-1 regression vector, pinned.
import t from 'tap';
import { transcriptHash, transcriptPreimage, type TranscriptInput } from '../../src/kdf/transcript.js';
import { deriveEpochSecrets, derivePrk, finishedTag } from '../../src/kdf/schedule.js';
import { deriveFlowKeys } from '../../src/kdf/flow.js';
import { nodeGcm } from '../../src/crypto/backends/node-gcm.js';
import { xchacha } from '../../src/crypto/backends/xchacha.js';
import { SecretBytes } from '../../src/util/secret.js';
import { u16, u32, u64, u8 } from '../../src/util/bytes.js';

const rep = (b: number, n: number) => Buffer.alloc(n, b);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const nonce = (iv: Buffer, counter: number) => {
  const n = Buffer.from(iv);
  const c = u64(counter);
  for (let i = 0; i < 8; i++) n[n.length - 8 + i] ^= c[i];
  return n;
};

const base: TranscriptInput = {
  suite: 1, epoch: 1, mode: 0, idI: 'gw-a.example', idR: 'gw-b.example',
  keyIds: ['0e9a3f8c-5b1d-4c2e-9f3a-7d6b5c4a3b2c'],
  nI: rep(0x11, 32), nR: rep(0x22, 32), pkXI: rep(0x33, 32), pkXR: rep(0x34, 32),
  ekM: rep(0x44, 1184), ctM: rep(0x55, 1088), exporter: rep(0x66, 32),
};
const ss = { ssM: rep(0xa1, 32), ssX: rep(0xb2, 32), kQkd: rep(0xc3, 32) };
const flowId = rep(0x77, 16);
const carrierHeader = Buffer.concat([u8(2), u8(0), u16(0), u32(1), u64(0), u32(21)]);

t.test('suite 1, epoch 1, unchained', async (t) => {
  t.equal(transcriptPreimage(base).length, 2533, 'TH preimage length');
  const th = transcriptHash(base);
  t.equal(hex(th), '28c9bbbbe1d94511b6be11d3e3dc010159aa0c27643125a2fb26838c270d4865', 'TH');
  t.equal(hex(derivePrk({ salt: null, ...ss })), '15011597e46ab76a37d3f80dac504fc2b85075d0006d89e2987b183df70e5823', 'PRK');
  const s = deriveEpochSecrets({ suite: 1, salt: null, ...ss, th });
  t.equal(hex(s.keyI2R.expose()), '73bf5f45dda73958bf98cafbeac3c3f9179a673c75b6824ece224c99d36d0132', 'key i2r');
  t.equal(hex(s.keyR2I.expose()), 'c65b197a09cb127afc8376ce3559ede5866f9b0da28245f6d2a8a43592bf7d86', 'key r2i');
  t.equal(hex(s.ivI2R.expose()), '82e63e59c6cc75c932a5f3f1', 'iv i2r');
  t.equal(hex(s.ivR2I.expose()), 'fd6ea641a259339ea1ebe534', 'iv r2i');
  t.equal(hex(s.finishedI.expose()), '4df2324e7b7419d2ae216c612782605fc1a228cc4979144f0d1f82d6303068e6', 'finished i');
  t.equal(hex(s.finishedR.expose()), '63033290e54c82d7ae1ae3b027336f28821ef1e10f41c7f2a7f370839361b387', 'finished r');
  t.equal(hex(s.chain.expose()), '1315d458dfab75c032dd479691e85bb2ed62931dd7d9243e1271909f3b0d3794', 'chain');
  t.equal(hex(finishedTag(s.finishedR, th)), 'fdfb4d3b44d8e39e7b4fccc55c8335f44b4b815334a86b07412d89aea06144f3', 'tag_R');
  t.equal(hex(finishedTag(s.finishedI, th)), 'f1abdeefe3a445962d16d6bb6a9b6df2c383244609f25932bf644dde0dcf7311', 'tag_I');
  t.equal(hex(nonce(s.ivI2R.expose(), 1)), '82e63e59c6cc75c932a5f3f0', 'nonce, iv i2r, counter 1');
  t.equal(hex(s.flowI2R.expose()), '40eadd23bef52e8489bccd569fe00662e39e07c2758af555f9de5cb52b0a40c4', 'flow i2r');
  t.equal(hex(s.flowR2I.expose()), 'f8ff96a17680101922d4335b8d6c2b5f220ba7e73e5db772e9e72700faaa8a48', 'flow r2i');
  const fi = deriveFlowKeys(s.flowI2R, flowId, 1);
  t.equal(hex(fi.key.expose()), '30ec9ee4a921ce731c195676f746c47195a63f95966c5d017d1ac1e9d13d3a3a', 'flow_key i2r');
  t.equal(hex(fi.iv), '3fbb21ed4aca6486b85e1aee', 'flow_iv i2r');
  const fr = deriveFlowKeys(s.flowR2I, flowId, 1);
  t.equal(hex(fr.key.expose()), '537066566bd71779045e43c1441f373fc17d5a98708c7bcd71bf32f3b0c5d8e7', 'flow_key r2i');
  t.equal(hex(fr.iv), '315b3c525f0bb0af56e60ae4', 'flow_iv r2i');
  t.equal(hex(carrierHeader), '0200000000000001000000000000000000000015', 'carrier DATA header');
  const aead = nodeGcm(fi.key.expose());
  const sealed = aead.seal(nonce(fi.iv, 0), Buffer.from('hello'), carrierHeader);
  t.equal(hex(sealed), '06590e078e3ebe883d4e5cd5faa61f81992ee3590d', 'carrier record ciphertext and tag');
  t.equal(aead.open(nonce(fi.iv, 0), sealed, carrierHeader)?.toString(), 'hello');
  const l3Header = Buffer.concat([u8(4), u8(0), u16(0), u32(0x01020304), u32(1), u64(1)]);
  t.equal(hex(l3Header), '0400000001020304000000010000000000000001', 'L3 header');
  const l3 = nodeGcm(s.keyI2R.expose()).seal(nonce(s.ivI2R.expose(), 1), Buffer.from('hello'), l3Header);
  t.equal(hex(l3), '4bbdb42d5f991c06d319902ce2bc14eec579d7f423', 'L3 ciphertext and tag');

  t.test('chained epoch 2', async (t) => {
    const th2 = transcriptHash({ ...base, epoch: 2, mode: 1 });
    const prk2 = derivePrk({ salt: s.chain.expose(), ...ss });
    t.equal(hex(prk2), '65450d0f280e4283a2cca50930dbbcea7adf6983553d8dec7a4836e15b7c9877', 'PRK');
    const s2 = deriveEpochSecrets({ suite: 1, salt: s.chain.expose(), ...ss, th: th2 });
    t.equal(hex(s2.keyI2R.expose()), 'f48b7caf45fb1a361160a8a53e1c56badd814b308ca4f06f581320b121459e7a', 'key i2r');
  });
});

t.test('suite 2', async (t) => {
  const th = transcriptHash({ ...base, suite: 2 });
  t.equal(hex(th), '3d26384ac2db2a6d5ad3eedb3bbab29485ebd85f60e6d92a74dca67e08d64a9e', 'TH');
  const s = deriveEpochSecrets({ suite: 2, salt: null, ...ss, th });
  t.equal(hex(s.ivI2R.expose()), '5dd1a3780eeb7c2554cc4b911527ce726b54cdff998b6cf9', 'iv i2r (24)');
  t.equal(hex(finishedTag(s.finishedR, th)), '6a15900d130a2cf14fef8c7582d48649de87336b75978d79e8474f12a4774f70', 'tag_R');
  t.equal(hex(s.flowI2R.expose()), '5fb4ea46b3dedd7b5095f0bd46caed6c3e3846f67fe9dac34430078d1543af31', 'flow i2r');
  const fi = deriveFlowKeys(s.flowI2R, flowId, 2);
  t.equal(hex(fi.key.expose()), '9cd0020992fb0896cf555141454a274343bf51bff6f15461f022f079705b109b', 'flow_key i2r');
  t.equal(hex(fi.iv), '00d5e95ef2aa5264bd4bb3ed15bc67e3dbe6bac85cc21b6a', 'flow_iv i2r (24)');
  const sealed = xchacha(fi.key.expose()).seal(nonce(fi.iv, 0), Buffer.from('hello'), carrierHeader);
  t.equal(hex(sealed), 'dccf47fc99115635306a97f13d15d82820f3d01128', 'carrier DATA sealed (XChaCha20-Poly1305)');
});

t.test('degraded (mode 2, no key_ID, K_QKD = 00*32)', async (t) => {
  const th = transcriptHash({ ...base, mode: 2, keyIds: [] });
  t.equal(hex(th), '457de85a719b8f746f2287d9ef214f23004772b50372f8888c55feec11c6286b', 'TH');
  const zero = rep(0, 32);
  t.equal(hex(derivePrk({ salt: null, ssM: ss.ssM, ssX: ss.ssX, kQkd: zero })), 'e9b31153832739ff284af5fb34c943ab32dac2094730a8581f28f736736f2a76', 'PRK');
  const s = deriveEpochSecrets({ suite: 1, salt: null, ssM: ss.ssM, ssX: ss.ssX, kQkd: zero, th });
  t.equal(hex(s.chain.expose()), '634ec8a536b7db4cc16796a7398e7bfdd06803a15672c3ea2bbb07b674710b78', 'chain');
});

t.test('every length is checked', async (t) => {
  const th = transcriptHash(base);
  t.throws(() => deriveEpochSecrets({ suite: 1, salt: null, ...ss, kQkd: rep(0xc3, 16), th }), { code: 'QKDGW_E_CRYPTO_LENGTH' }, '16-byte K_QKD');
  t.throws(() => deriveEpochSecrets({ suite: 1, salt: null, ...ss, kQkd: rep(0xc3, 33), th }), { code: 'QKDGW_E_CRYPTO_LENGTH' }, '33-byte K_QKD');
  t.throws(() => deriveEpochSecrets({ suite: 1, salt: null, ...ss, ssM: rep(1, 31), th }), { code: 'QKDGW_E_CRYPTO_LENGTH' });
  t.throws(() => deriveEpochSecrets({ suite: 1, salt: rep(0, 31), ...ss, th }), { code: 'QKDGW_E_CRYPTO_LENGTH' });
  t.throws(() => transcriptHash({ ...base, nI: rep(1, 31) }), { code: 'QKDGW_E_CRYPTO_LENGTH' });
  t.throws(() => deriveFlowKeys(SecretBytes.from(rep(1, 32)), rep(1, 15), 1), { code: 'QKDGW_E_CRYPTO_LENGTH' });
});

t.test('BC-12: every single-field change changes the output', async (t) => {
  const ref = hex(deriveEpochSecrets({ suite: 1, salt: null, ...ss, th: transcriptHash(base) }).keyI2R.expose());
  const variants: Array<[string, Partial<TranscriptInput>]> = [
    ['key_ID', { keyIds: ['0e9a3f8c-5b1d-4c2e-9f3a-7d6b5c4a3b2d'] }],
    ['ct_M', { ctM: Buffer.concat([rep(0x55, 1087), u8(0x56)]) }],
    ['epoch', { epoch: 7 }],
    ['pkX_I', { pkXI: rep(0x35, 32) }],
    ['pkX_R', { pkXR: rep(0x36, 32) }],
    ['id_I/id_R boundary shift', { idI: 'gw-a.exampleg', idR: 'w-b.example' }],
    ['exporter', { exporter: rep(0x67, 32) }],
    ['mode', { mode: 1 }],
  ];
  for (const [name, v] of variants) {
    const out = hex(deriveEpochSecrets({ suite: 1, salt: null, ...ss, th: transcriptHash({ ...base, ...v }) }).keyI2R.expose());
    t.not(out, ref, name);
  }
  const s = deriveEpochSecrets({ suite: 1, salt: null, ...ss, th: transcriptHash(base) });
  t.not(hex(s.keyI2R.expose()), hex(s.keyR2I.expose()), 'directions differ');
});

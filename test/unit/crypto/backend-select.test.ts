// Issue 3: choosing the AES-256-GCM backend (src/crypto/backend.ts selectBackend and
// src/daemon/crypto-backend.ts chooseCryptoBackend): auto prefers native, falls back with
// the reason, forced backends fail loudly, and a native binding that gives wrong answers
// is caught by its known-answer test before it is used. The misbehaving bindings are
// CommonJS fakes over node:crypto written into t.testdir(), loaded through loadNative.
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKEND_NAMES, aeadForSuite, selectBackend, surveyBackends, type BackendChoice, type BackendRequest } from '../../../src/crypto/backend.js';
import { xchacha } from '../../../src/crypto/backends/xchacha.js';
import { nodeGcm } from '../../../src/crypto/backends/node-gcm.js';
import { NATIVE_ABI } from '../../../src/crypto/native/binding.js';
import { loadNative, type NativeStatus } from '../../../src/crypto/native/loader.js';
import { gcmKnownAnswerResults } from '../../../src/crypto/selftest-gcm.js';
import { runSelfTest } from '../../../src/crypto/selftest.js';
import { chooseCryptoBackend } from '../../../src/daemon/crypto-backend.js';
import { ErrorCodes } from '../../../src/errors.js';
import { nativeStatus, withNative } from '../../vectors/aead-backends.js';

/** Known-answer checks of src/crypto/selftest-gcm.ts the faults below must (not) trip, by name. */
const KAT = {
  spec: 'GCM spec test case 14',
  carrier: 'protocol.md s3.5 carrier record',
  reject: 'rejects a flipped tag bit and a 15-byte tag, leaving no plaintext',
  batch: 'batch of 3 equals single records (protocol.md s5 nonces)',
};
/** Every check's name (the list may grow; the assertions below say which must fail and which must pass). */
const ALL_CHECKS = gcmKnownAnswerResults(nodeGcm).map((r) => r.name);

/** How a fake addon misbehaves. */
interface Fault {
  /** XOR mask applied to the first output byte of every seal (0 = honest). */
  flip?: number;
  /** Open reports success even when the tag does not verify. */
  acceptForged?: boolean;
  /** gcmNew throws. */
  keyFails?: boolean;
}

/** CommonJS source of an ABI-1 binding over node:crypto with `fault` built in. */
function fakeAddonSource(fault: Fault): string {
  return `'use strict';
const c = require('node:crypto');
const FLIP = ${fault.flip ?? 0};
const ACCEPT_FORGED = ${fault.acceptForged ? 'true' : 'false'};
function seal(k, n, pt, aad, out) {
  const x = c.createCipheriv('aes-256-gcm', k, n, { authTagLength: 16 });
  x.setAAD(aad);
  const body = Buffer.concat([x.update(pt), x.final(), x.getAuthTag()]);
  out.set(body);
  out[0] ^= FLIP;
  return body.length;
}
function open(k, n, s, aad, out) {
  if (s.length < 16) return -1;
  const d = c.createDecipheriv('aes-256-gcm', k, n, { authTagLength: 16 });
  d.setAAD(aad);
  d.setAuthTag(s.subarray(s.length - 16));
  const p = d.update(s.subarray(0, s.length - 16));
  try { d.final(); } catch { out.fill(0, 0, s.length - 16); return ACCEPT_FORGED ? s.length - 16 : -1; }
  out.set(p);
  return p.length;
}
function nonce(iv, ctr) {
  const n = Buffer.from(iv);
  n.writeUInt32BE((n.readUInt32BE(4) ^ Math.floor(ctr / 2 ** 32)) >>> 0, 4);
  n.writeUInt32BE((n.readUInt32BE(8) ^ (ctr >>> 0)) >>> 0, 8);
  return n;
}
module.exports = {
  abi: ${NATIVE_ABI},
  gcmNew(key) { if (${fault.keyFails ? 'true' : 'false'}) throw new Error('fake addon: key setup failed'); return { key: Buffer.from(key) }; },
  gcmFree() {},
  gcmSeal: (ctx, n, pt, aad, out) => seal(ctx.key, n, pt, aad, out),
  gcmOpen: (ctx, n, s, aad, out) => open(ctx.key, n, s, aad, out),
  gcmSealAt: (ctx, iv, ctr, pt, aad, out) => seal(ctx.key, nonce(iv, ctr), pt, aad, out),
  gcmOpenAt: (ctx, iv, ctr, s, aad, out) => open(ctx.key, nonce(iv, ctr), s, aad, out),
  gcmSealBatch(ctx, iv, ctr, src, aad, dst, l) {
    for (let o = 0; o < l.length; o += 5) seal(ctx.key, nonce(iv, ctr + o / 5), src.subarray(l[o], l[o] + l[o + 1]), aad.subarray(l[o + 2], l[o + 2] + l[o + 3]), dst.subarray(l[o + 4]));
    return l.length / 5;
  },
  gcmOpenBatch(ctx, iv, ctr, src, aad, dst, l, st) {
    let failed = 0;
    for (let o = 0; o < l.length; o += 5) {
      const ok = l[o + 1] >= 16 && open(ctx.key, nonce(iv, ctr + o / 5), src.subarray(l[o], l[o] + l[o + 1]), aad.subarray(l[o + 2], l[o + 2] + l[o + 3]), dst.subarray(l[o + 4])) >= 0;
      st[o / 5] = ok ? 1 : 0;
      if (!ok) failed++;
    }
    return failed;
  },
};
`;
}

/** Writes a fake addon with `fault` into t.testdir(); returns its path. */
function fakeAddon(t: Test, fault: Fault): string {
  const dir = t.testdir({ 'package.json': JSON.stringify({ type: 'commonjs' }) });
  const path = join(dir, 'fake-addon.js');
  writeFileSync(path, fakeAddonSource(fault));
  return path;
}

/** A loaded fake addon (fails the test if the loader refuses it). */
function fakeStatus(t: Test, fault: Fault): NativeStatus {
  const s = loadNative({ path: fakeAddon(t, fault) });
  t.equal(s.available, true, 'the fake addon loads');
  return s;
}

const UNAVAILABLE: NativeStatus = { available: false, reason: 'addon not built (/x/qkdgw_native.node is missing; run `npm run build:native`)', path: '/x/qkdgw_native.node' };

/** The thrown error's code and message. */
function thrown(fn: () => unknown): { code?: string; message: string } | undefined {
  try {
    fn();
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
  return undefined;
}

t.test('control: an honest fake addon passes its self-test and is chosen by auto', async (t) => {
  const c = selectBackend('auto', fakeStatus(t, {}));
  t.equal(c.backend.name, 'native');
  t.same(c.reports.map((r) => [r.name, r.selftestFailures]), [['native', []]], 'only native was tested, with no failures');
});

withNative(t, 'auto with the real addon available chooses native', (t, _b, status) => {
  const c = selectBackend('auto', status);
  t.equal(c.backend.name, 'native');
  t.equal(c.requested, 'auto');
  t.match(c.why, /^auto chose native: .* passed its self-test$/);
  t.match(c.backend.description, status.path, 'the description names the addon path');
  t.same(c.reports, [{ name: 'native', available: true, detail: `addon ${status.path}`, selftestFailures: [] }]);
  const forced = selectBackend('native', status);
  t.equal(forced.backend.name, 'native');
  t.match(forced.why, /^native forced by configuration/);
});

t.test('selectBackend table', async (t) => {
  interface Row {
    name: string;
    requested: BackendRequest;
    native: (t: Test) => NativeStatus;
    /** The backend chosen, or the error code thrown. */
    want: 'native' | 'node' | 'noble' | typeof ErrorCodes.CRYPTO_BACKEND | typeof ErrorCodes.SELFTEST_FAILED;
    /** Fragments the `why` (or the error message) must contain. */
    says: string[];
    /**
     * The native report when native was considered: null = not tested (unavailable), else
     * checks that must be among its failures and checks that must not.
     */
    nativeFailures?: { fail: string[]; pass: string[] } | null;
  }
  const rows: Row[] = [
    { name: 'auto, addon missing -> node, why names the reason', requested: 'auto', native: () => UNAVAILABLE, want: 'node', says: ['auto chose node', `native unavailable: ${UNAVAILABLE.reason}`], nativeFailures: null },
    { name: 'auto, addon disabled -> node, why names the reason', requested: 'auto', native: () => loadNative({ disabled: 'disabled by QKDGW_NATIVE=0' }), want: 'node', says: ['native unavailable: disabled by QKDGW_NATIVE=0'], nativeFailures: null },
    { name: 'native forced, addon missing -> CRYPTO_BACKEND', requested: 'native', native: () => UNAVAILABLE, want: ErrorCodes.CRYPTO_BACKEND, says: ['native is unavailable', UNAVAILABLE.reason] },
    { name: 'auto, binding flips a ciphertext bit -> node, report lists the failed checks', requested: 'auto', native: (t) => fakeStatus(t, { flip: 1 }), want: 'node', says: ['auto chose node', 'native failed its self-test: ', KAT.spec, KAT.carrier, KAT.batch], nativeFailures: { fail: [KAT.spec, KAT.carrier, KAT.batch], pass: [KAT.reject] } },
    { name: 'auto, binding accepts forged tags (single and batch) -> node', requested: 'auto', native: (t) => fakeStatus(t, { acceptForged: true }), want: 'node', says: ['native failed its self-test: ', KAT.reject, KAT.batch], nativeFailures: { fail: [KAT.reject, KAT.batch], pass: [KAT.spec, KAT.carrier] } },
    { name: 'auto, binding throws on key setup -> node, every check failed', requested: 'auto', native: (t) => fakeStatus(t, { keyFails: true }), want: 'node', says: ['native failed its self-test'], nativeFailures: { fail: ALL_CHECKS, pass: [] } },
    { name: 'native forced, binding flips a bit -> SELFTEST_FAILED naming the checks', requested: 'native', native: (t) => fakeStatus(t, { flip: 0x80 }), want: ErrorCodes.SELFTEST_FAILED, says: ['no AES-256-GCM backend passed', KAT.spec, KAT.carrier, KAT.batch] },
    { name: 'noble forced -> noble (even with an addon)', requested: 'noble', native: (t) => fakeStatus(t, {}), want: 'noble', says: ['noble forced by configuration'] },
    { name: 'noble forced, addon missing -> noble', requested: 'noble', native: () => UNAVAILABLE, want: 'noble', says: ['noble forced by configuration'] },
    { name: 'node forced -> node (even with an addon)', requested: 'node', native: (t) => fakeStatus(t, {}), want: 'node', says: ['node forced by configuration', 'node:crypto AES-256-GCM passed its self-test'] },
  ];
  for (const row of rows) {
    t.test(row.name, async (t) => {
      const native = row.native(t);
      let choice: BackendChoice | undefined;
      const err = thrown(() => (choice = selectBackend(row.requested, native)));
      if (row.want.startsWith('QKDGW_E_')) {
        t.equal(err?.code, row.want, `throws ${row.want}`);
        for (const s of row.says) t.match(err?.message ?? '', s, `message says "${s}"`);
        return;
      }
      t.equal(err, undefined, 'no throw');
      t.equal(choice?.backend.name, row.want, `chose ${row.want}`);
      t.equal(choice?.requested, row.requested);
      for (const s of row.says) t.match(choice?.why ?? '', s, `why says "${s}"`);
      const last = choice?.reports.at(-1);
      t.same(last && { name: last.name, available: last.available, selftestFailures: last.selftestFailures }, { name: row.want, available: true, selftestFailures: [] }, 'the chosen backend is reported as passing');
      if (row.nativeFailures !== undefined) {
        const nr = choice?.reports.find((r) => r.name === 'native');
        t.equal(nr?.available, row.nativeFailures !== null, 'native availability reported');
        if (row.nativeFailures === null) {
          t.equal(nr?.selftestFailures, null, 'an unavailable native was not tested');
          t.equal(nr?.detail, native.available ? '' : native.reason, 'the native report carries the loader reason');
        } else {
          const got = nr?.selftestFailures ?? [];
          for (const c of row.nativeFailures.fail) t.ok(got.includes(c), `the native report lists the failed check "${c}"`);
          for (const c of row.nativeFailures.pass) t.notOk(got.includes(c), `and not the passing check "${c}"`);
          t.ok(got.every((c) => ALL_CHECKS.includes(c)), 'every listed failure is a known check');
        }
      }
      if (row.requested !== 'auto') t.equal(choice?.reports.length, 1, 'a forced choice tests only that backend');
    });
  }
});

t.test('surveyBackends reports every backend, tested or not', async (t) => {
  const flip = fakeStatus(t, { flip: 1 });
  const r = surveyBackends(flip);
  t.same(r.map((x) => x.name), BACKEND_NAMES, 'native, node, noble in order');
  t.same(r.slice(1).map((x) => x.selftestFailures), [[], []], 'node and noble pass');
  t.ok([KAT.spec, KAT.carrier, KAT.batch].every((c) => r[0]!.selftestFailures?.includes(c)) && !r[0]!.selftestFailures?.includes(KAT.reject), 'native lists the checks a flipped bit trips');
  const missing = surveyBackends(UNAVAILABLE);
  t.same(missing[0], { name: 'native', available: false, detail: UNAVAILABLE.reason, selftestFailures: null });
});

t.test('aeadForSuite: suite 2 is XChaCha20-Poly1305 whatever the AES backend', async (t) => {
  const c = selectBackend('noble', UNAVAILABLE);
  t.equal(aeadForSuite(2, c.backend), xchacha);
  t.equal(aeadForSuite(1, c.backend), c.backend.aes256gcm);
});

t.test('chooseCryptoBackend: the environment knobs', async (t) => {
  const missing = join(t.testdir({}), 'missing.node');
  const flipPath = fakeAddon(t, { flip: 1 });
  const real = nativeStatus();
  interface EnvRow { name: string; requested: BackendRequest; env: NodeJS.ProcessEnv; want: string; says: string[] }
  const rows: EnvRow[] = [
    { name: 'QKDGW_NATIVE=0, auto -> node, why names the variable', requested: 'auto', env: { QKDGW_NATIVE: '0' }, want: 'node', says: ['native unavailable: disabled by QKDGW_NATIVE=0'] },
    { name: 'QKDGW_NATIVE=off with native configured -> CRYPTO_BACKEND', requested: 'native', env: { QKDGW_NATIVE: 'off' }, want: ErrorCodes.CRYPTO_BACKEND, says: ['disabled by QKDGW_NATIVE=off'] },
    { name: 'QKDGW_NATIVE=1, auto, no addon -> CRYPTO_BACKEND', requested: 'auto', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: missing }, want: ErrorCodes.CRYPTO_BACKEND, says: [missing] },
    { name: 'QKDGW_NATIVE=true, auto, no addon -> CRYPTO_BACKEND', requested: 'auto', env: { QKDGW_NATIVE: 'true', QKDGW_NATIVE_ADDON: missing }, want: ErrorCodes.CRYPTO_BACKEND, says: ['native is unavailable'] },
    { name: 'auto, no addon, no QKDGW_NATIVE -> node', requested: 'auto', env: { QKDGW_NATIVE_ADDON: missing }, want: 'node', says: [missing] },
    { name: 'QKDGW_NATIVE=banana -> CRYPTO_BACKEND', requested: 'auto', env: { QKDGW_NATIVE: 'banana' }, want: ErrorCodes.CRYPTO_BACKEND, says: ['banana'] },
    { name: 'addon override that flips a bit, auto -> node listing the failures', requested: 'auto', env: { QKDGW_NATIVE_ADDON: flipPath }, want: 'node', says: ['native failed its self-test: ', KAT.spec, KAT.carrier, KAT.batch] },
    { name: 'addon override that flips a bit, QKDGW_NATIVE=1 -> SELFTEST_FAILED', requested: 'auto', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: flipPath }, want: ErrorCodes.SELFTEST_FAILED, says: [KAT.spec] },
    { name: 'QKDGW_NATIVE=1 does not override a configured noble', requested: 'noble', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: missing }, want: 'noble', says: ['noble forced'] },
    { name: 'noble configured -> noble', requested: 'noble', env: {}, want: 'noble', says: ['noble forced'] },
  ];
  if (real.available) {
    rows.push(
      { name: 'auto with the real addon -> native', requested: 'auto', env: { QKDGW_NATIVE_ADDON: real.path }, want: 'native', says: ['auto chose native'] },
      { name: 'QKDGW_NATIVE=1, auto, real addon -> native', requested: 'auto', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: real.path }, want: 'native', says: ['native forced'] },
    );
  } else {
    withNative(t, 'chooseCryptoBackend with the real addon', () => {});
  }
  for (const row of rows) {
    let choice: BackendChoice | undefined;
    const err = thrown(() => (choice = chooseCryptoBackend(row.requested, row.env)));
    if (row.want.startsWith('QKDGW_E_')) {
      t.equal(err?.code, row.want, `${row.name}: throws`);
      for (const s of row.says) t.match(err?.message ?? '', s, `${row.name}: message says "${s}"`);
    } else {
      t.equal(err, undefined, `${row.name}: no throw`);
      t.equal(choice?.backend.name, row.want, `${row.name}: chose ${row.want}`);
      for (const s of row.says) t.match(choice?.why ?? '', s, `${row.name}: why says "${s}"`);
    }
  }
});

t.test('runSelfTest passes on every available backend', async (t) => {
  const status = nativeStatus();
  for (const name of BACKEND_NAMES) {
    if (name === 'native' && !status.available) {
      withNative(t, 'runSelfTest on native', () => {});
      continue;
    }
    const backend = selectBackend(name, status).backend;
    const r = runSelfTest(backend);
    const gcm = r.filter((x) => x.name.startsWith(`AES-256-GCM on ${name}: `));
    t.equal(gcm.length, ALL_CHECKS.length, `${name}: every AES-256-GCM check ran`);
    t.ok(gcm.length >= Object.keys(KAT).length, `${name}: at least the ${Object.keys(KAT).length} known checks`);
    t.same(r.filter((x) => !x.ok).map((x) => x.name), [], `${name}: no check failed`);
  }
});

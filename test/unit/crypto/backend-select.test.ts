// Issue 3: choosing the AES-256-GCM backend (src/crypto/backend.ts selectBackend and
// src/daemon/crypto-backend.ts chooseCryptoBackend): auto prefers native, falls back with
// the reason, forced backends fail loudly, and a native binding that gives wrong answers
// is caught by its known-answer test before it is used. The misbehaving bindings are
// in-process fakes over node:crypto passed through checkBinding (the loader's ABI and
// surface check): the loader itself only ever dlopens a real `.node` file.
import t, { type Test } from 'tap';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { join } from 'node:path';
import { BACKEND_NAMES, aeadForSuite, selectBackend, surveyBackends, type BackendChoice, type BackendRequest } from '../../../src/crypto/backend.js';
import { xchacha } from '../../../src/crypto/backends/xchacha.js';
import { nodeGcm } from '../../../src/crypto/backends/node-gcm.js';
import { NATIVE_ABI, type NativeBinding, type NativeGcmContext } from '../../../src/crypto/native/binding.js';
import { checkBinding, loadNative, type NativeStatus } from '../../../src/crypto/native/loader.js';
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
  at: 'sealAt/openAt equal seal/open under nonce(iv, counter), counters 0 .. 2^53-1',
  long: 'records of 1,400 B, 8 KiB and 64 KiB equal node:crypto and open back',
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

/** protocol.md s5: iv XOR (0^4 || be64(counter)), written out here independently of src/crypto/nonce.ts. */
function nonceOf(iv: Uint8Array, ctr: number): Buffer {
  const n = Buffer.from(iv);
  n.writeUInt32BE((n.readUInt32BE(4) ^ Math.floor(ctr / 2 ** 32)) >>> 0, 4);
  n.writeUInt32BE((n.readUInt32BE(8) ^ (ctr >>> 0)) >>> 0, 8);
  return n;
}

/**
 * An ABI-2 binding over node:crypto with `fault` built in, the shape the C addon exports.
 * Its contexts are plain objects holding the key (a fake, not a key store).
 */
function fakeBinding(fault: Fault): NativeBinding {
  const FLIP = fault.flip ?? 0;
  type Ctx = { key: Buffer };
  const key = (ctx: NativeGcmContext): Buffer => (ctx as unknown as Ctx).key;
  const seal = (k: Buffer, n: Uint8Array, pt: Uint8Array, aad: Uint8Array, out: Uint8Array): number => {
    const x = createCipheriv('aes-256-gcm', k, n, { authTagLength: 16 });
    x.setAAD(aad);
    const body = Buffer.concat([x.update(pt), x.final(), x.getAuthTag()]);
    out.set(body);
    out[0]! ^= FLIP;
    return body.length;
  };
  const open = (k: Buffer, n: Uint8Array, s: Uint8Array, aad: Uint8Array, out: Uint8Array): number => {
    if (s.length < 16) return -1;
    const d = createDecipheriv('aes-256-gcm', k, n, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(s.subarray(s.length - 16));
    const p = d.update(s.subarray(0, s.length - 16));
    try {
      d.final();
    } catch {
      out.fill(0, 0, s.length - 16);
      return fault.acceptForged ? s.length - 16 : -1;
    }
    out.set(p);
    return p.length;
  };
  return {
    abi: NATIVE_ABI,
    gcmNew(k) {
      if (fault.keyFails) throw new Error('fake addon: key setup failed');
      return { key: Buffer.from(k) } as unknown as NativeGcmContext;
    },
    gcmFree() {},
    gcmSeal: (ctx, n, pt, aad, out) => seal(key(ctx), n, pt, aad, out),
    gcmOpen: (ctx, n, s, aad, out) => open(key(ctx), n, s, aad, out),
    gcmSealAt: (ctx, iv, ctr, pt, aad, out) => seal(key(ctx), nonceOf(iv, ctr), pt, aad, out),
    gcmOpenAt: (ctx, iv, ctr, s, aad, out) => open(key(ctx), nonceOf(iv, ctr), s, aad, out),
    gcmSealBatch(ctx, iv, ctr, src, aad, dst, l) {
      for (let o = 0; o < l.length; o += 5) seal(key(ctx), nonceOf(iv, ctr + o / 5), src.subarray(l[o], l[o]! + l[o + 1]!), aad.subarray(l[o + 2], l[o + 2]! + l[o + 3]!), dst.subarray(l[o + 4]));
      return l.length / 5;
    },
    gcmOpenBatch(ctx, iv, ctr, src, aad, dst, l, st) {
      let failed = 0;
      for (let o = 0; o < l.length; o += 5) {
        const ok = l[o + 1]! >= 16 && open(key(ctx), nonceOf(iv, ctr + o / 5), src.subarray(l[o], l[o]! + l[o + 1]!), aad.subarray(l[o + 2], l[o + 2]! + l[o + 3]!), dst.subarray(l[o + 4])) >= 0;
        st[o / 5] = ok ? 1 : 0;
        if (!ok) failed++;
      }
      return failed;
    },
    sdNotify: () => false,
  };
}

/** A fake addon with `fault`, as the loader would report it after the ABI/surface checks (fails the test if refused). */
function fakeStatus(t: Test, fault: Fault): NativeStatus {
  const s = checkBinding(fakeBinding(fault), '/fake/qkdgw_native.node');
  t.equal(s.available, true, 'the fake addon passes the ABI and surface checks');
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
  t.match(forced.why, /^native forced by crypto\.backend: /);
  t.match(selectBackend('native', status, '--backend').why, /^native forced by --backend: /, 'forcedBy names who forced it');
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
    /** selectBackend's forcedBy (default: its own default, crypto.backend). */
    forcedBy?: string;
    /** Fragments the error message must NOT contain. */
    never?: string[];
  }
  const rows: Row[] = [
    { name: 'auto, addon missing -> node, why names the reason', requested: 'auto', native: () => UNAVAILABLE, want: 'node', says: ['auto chose node', `native unavailable: ${UNAVAILABLE.reason}`], nativeFailures: null },
    { name: 'auto, addon disabled -> node, why names the reason', requested: 'auto', native: () => loadNative({ disabled: 'disabled by QKDGW_NATIVE=0' }), want: 'node', says: ['native unavailable: disabled by QKDGW_NATIVE=0'], nativeFailures: null },
    { name: 'native forced, addon missing -> CRYPTO_BACKEND with the fallback hint', requested: 'native', native: () => UNAVAILABLE, want: ErrorCodes.CRYPTO_BACKEND, says: ['AES-256-GCM backend native (forced by crypto.backend) is unavailable: ', UNAVAILABLE.reason, '(crypto.backend: auto falls back to node)'] },
    { name: 'native forced by --backend, addon missing -> CRYPTO_BACKEND naming --backend, no config hint', requested: 'native', forcedBy: '--backend', native: () => UNAVAILABLE, want: ErrorCodes.CRYPTO_BACKEND, says: ['native (forced by --backend) is unavailable', UNAVAILABLE.reason], never: ['crypto.backend'] },
    { name: 'native forced by QKDGW_NATIVE=1, addon missing -> CRYPTO_BACKEND saying to unset it', requested: 'native', forcedBy: 'QKDGW_NATIVE=1', native: () => UNAVAILABLE, want: ErrorCodes.CRYPTO_BACKEND, says: ['native (forced by QKDGW_NATIVE=1) is unavailable', 'unset QKDGW_NATIVE to fall back to node'] },
    { name: 'auto, binding flips a ciphertext bit -> node, report lists the failed checks', requested: 'auto', native: (t) => fakeStatus(t, { flip: 1 }), want: 'node', says: ['auto chose node', 'native failed its self-test: ', KAT.spec, KAT.carrier, KAT.batch, KAT.at, KAT.long], nativeFailures: { fail: [KAT.spec, KAT.carrier, KAT.batch, KAT.at, KAT.long], pass: [KAT.reject] } },
    { name: 'auto, binding accepts forged tags (single and batch) -> node', requested: 'auto', native: (t) => fakeStatus(t, { acceptForged: true }), want: 'node', says: ['native failed its self-test: ', KAT.reject, KAT.batch, KAT.at, KAT.long], nativeFailures: { fail: [KAT.reject, KAT.batch, KAT.at, KAT.long], pass: [KAT.spec, KAT.carrier] } },
    { name: 'auto, binding throws on key setup -> node, every check failed', requested: 'auto', native: (t) => fakeStatus(t, { keyFails: true }), want: 'node', says: ['native failed its self-test'], nativeFailures: { fail: ALL_CHECKS, pass: [] } },
    { name: 'native forced, binding flips a bit -> SELFTEST_FAILED naming the checks', requested: 'native', native: (t) => fakeStatus(t, { flip: 0x80 }), want: ErrorCodes.SELFTEST_FAILED, says: ['no AES-256-GCM backend passed', KAT.spec, KAT.carrier, KAT.batch] },
    { name: 'native forced by QKDGW_NATIVE=1, binding flips a bit -> SELFTEST_FAILED', requested: 'native', forcedBy: 'QKDGW_NATIVE=1', native: (t) => fakeStatus(t, { flip: 1 }), want: ErrorCodes.SELFTEST_FAILED, says: ['native failed its self-test: ', KAT.spec] },
    { name: 'noble forced -> noble (even with an addon)', requested: 'noble', native: (t) => fakeStatus(t, {}), want: 'noble', says: ['noble forced by crypto.backend: '] },
    { name: 'noble forced, addon missing -> noble', requested: 'noble', native: () => UNAVAILABLE, want: 'noble', says: ['noble forced by crypto.backend'] },
    { name: 'node forced by --backend -> node, why names --backend', requested: 'node', forcedBy: '--backend', native: () => UNAVAILABLE, want: 'node', says: ['node forced by --backend: '] },
    { name: 'node forced -> node (even with an addon)', requested: 'node', native: (t) => fakeStatus(t, {}), want: 'node', says: ['node forced by crypto.backend', 'node:crypto AES-256-GCM passed its self-test'] },
  ];
  for (const row of rows) {
    t.test(row.name, async (t) => {
      const native = row.native(t);
      let choice: BackendChoice | undefined;
      const err = thrown(() => (choice = row.forcedBy === undefined ? selectBackend(row.requested, native) : selectBackend(row.requested, native, row.forcedBy)));
      if (row.want.startsWith('QKDGW_E_')) {
        t.equal(err?.code, row.want, `throws ${row.want}`);
        for (const s of row.says) t.ok((err?.message ?? '').includes(s), `message says "${s}"`);
        for (const s of row.never ?? []) t.notOk((err?.message ?? '').includes(s), `message does not say "${s}"`);
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
  t.ok([KAT.spec, KAT.carrier, KAT.batch, KAT.at, KAT.long].every((c) => r[0]!.selftestFailures?.includes(c)) && !r[0]!.selftestFailures?.includes(KAT.reject), 'native lists the checks a flipped bit trips');
  const missing = surveyBackends(UNAVAILABLE);
  t.same(missing[0], { name: 'native', available: false, detail: UNAVAILABLE.reason, selftestFailures: null });
});

t.test('aeadForSuite: suite 2 is XChaCha20-Poly1305 whatever the AES backend', async (t) => {
  const c = selectBackend('noble', UNAVAILABLE);
  t.equal(aeadForSuite(2, c.backend), xchacha);
  t.equal(aeadForSuite(1, c.backend), c.backend.aes256gcm);
});

t.test('chooseCryptoBackend: the environment knobs', async (t) => {
  const dir = t.testdir({ 'package.json': JSON.stringify({ type: 'commonjs' }) });
  const missing = join(dir, 'missing.node');
  // A .js "addon" that would leave a marker if anything ever ran it.
  const marker = join(dir, 'EXECUTED');
  const evil = join(dir, 'evil.js');
  writeFileSync(evil, `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'executed');\nmodule.exports = { abi: ${NATIVE_ABI} };\n`);
  const real = nativeStatus();
  const truncated = join(dir, 'truncated.node');
  if (real.available) writeFileSync(truncated, readFileSync(real.path).subarray(0, 20_000));
  interface EnvRow { name: string; requested: BackendRequest; env: NodeJS.ProcessEnv; want: string; says: string[]; forcedBy?: string }
  const rows: EnvRow[] = [
    { name: 'QKDGW_NATIVE=0, auto -> node, why names the variable', requested: 'auto', env: { QKDGW_NATIVE: '0' }, want: 'node', says: ['native unavailable: disabled by QKDGW_NATIVE=0'] },
    { name: 'QKDGW_NATIVE=0 with native configured -> CRYPTO_BACKEND', requested: 'native', env: { QKDGW_NATIVE: '0' }, want: ErrorCodes.CRYPTO_BACKEND, says: ['native (forced by crypto.backend) is unavailable: disabled by QKDGW_NATIVE=0'] },
    { name: 'QKDGW_NATIVE=off (not 0) -> CRYPTO_BACKEND, not understood', requested: 'native', env: { QKDGW_NATIVE: 'off' }, want: ErrorCodes.CRYPTO_BACKEND, says: ['QKDGW_NATIVE="off" is not understood'] },
    { name: 'QKDGW_NATIVE=true (not 1) -> CRYPTO_BACKEND, not understood', requested: 'auto', env: { QKDGW_NATIVE: 'true', QKDGW_NATIVE_ADDON: missing }, want: ErrorCodes.CRYPTO_BACKEND, says: ['QKDGW_NATIVE="true" is not understood'] },
    { name: 'QKDGW_NATIVE=banana -> CRYPTO_BACKEND', requested: 'auto', env: { QKDGW_NATIVE: 'banana' }, want: ErrorCodes.CRYPTO_BACKEND, says: ['"banana"'] },
    { name: 'QKDGW_NATIVE=banana is refused even when node is forced (a typo is never ignored)', requested: 'node', env: { QKDGW_NATIVE: 'banana' }, want: ErrorCodes.CRYPTO_BACKEND, says: ['"banana"'] },
    { name: 'QKDGW_NATIVE=1, auto, no addon -> CRYPTO_BACKEND naming the variable and the path', requested: 'auto', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: missing }, want: ErrorCodes.CRYPTO_BACKEND, says: ['native (forced by QKDGW_NATIVE=1) is unavailable', `no addon at ${missing}`, 'unset QKDGW_NATIVE to fall back to node'] },
    { name: 'QKDGW_NATIVE=1 beats forcedBy for auto', requested: 'auto', forcedBy: '--backend', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: missing }, want: ErrorCodes.CRYPTO_BACKEND, says: ['forced by QKDGW_NATIVE=1'] },
    { name: 'QKDGW_NATIVE= (empty) is unset: auto, no addon -> node', requested: 'auto', env: { QKDGW_NATIVE: '', QKDGW_NATIVE_ADDON: missing }, want: 'node', says: ['auto chose node', missing] },
    { name: 'auto, no addon, no QKDGW_NATIVE -> node', requested: 'auto', env: { QKDGW_NATIVE_ADDON: missing }, want: 'node', says: [missing] },
    { name: 'addon override that is a .js file, auto -> node, refused by name', requested: 'auto', env: { QKDGW_NATIVE_ADDON: evil }, want: 'node', says: ['native unavailable: ', 'does not end in .node'] },
    { name: 'addon override that is a .js file, QKDGW_NATIVE=1 -> CRYPTO_BACKEND', requested: 'auto', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: evil }, want: ErrorCodes.CRYPTO_BACKEND, says: ['does not end in .node'] },
    { name: 'native forced by --backend, no addon -> CRYPTO_BACKEND naming --backend', requested: 'native', forcedBy: '--backend', env: { QKDGW_NATIVE_ADDON: missing }, want: ErrorCodes.CRYPTO_BACKEND, says: ['native (forced by --backend) is unavailable'] },
    { name: 'QKDGW_NATIVE=1 does not override a configured noble', requested: 'noble', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: missing }, want: 'noble', says: ['noble forced by crypto.backend'] },
    { name: 'noble configured -> noble', requested: 'noble', env: {}, want: 'noble', says: ['noble forced by crypto.backend'] },
    { name: 'noble by --backend -> noble, why names --backend', requested: 'noble', forcedBy: '--backend', env: {}, want: 'noble', says: ['noble forced by --backend'] },
    { name: 'node forced with a .js override and QKDGW_NATIVE=1 -> node (the addon is not even looked at)', requested: 'node', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: evil }, want: 'node', says: ['node forced by crypto.backend'] },
  ];
  if (real.available) {
    rows.push(
      { name: 'auto with the real addon -> native', requested: 'auto', env: { QKDGW_NATIVE_ADDON: real.path }, want: 'native', says: ['auto chose native'] },
      { name: 'QKDGW_NATIVE=1, auto, real addon -> native', requested: 'auto', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: real.path }, want: 'native', says: ['native forced by QKDGW_NATIVE=1'] },
      { name: 'a truncated addon, auto -> node, why says truncated', requested: 'auto', env: { QKDGW_NATIVE_ADDON: truncated }, want: 'node', says: ['native unavailable: ', 'truncated'] },
      { name: 'a truncated addon, QKDGW_NATIVE=1 -> CRYPTO_BACKEND, says truncated', requested: 'auto', env: { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: truncated }, want: ErrorCodes.CRYPTO_BACKEND, says: ['truncated'] },
    );
  } else {
    withNative(t, 'chooseCryptoBackend with the real addon', () => {});
  }
  for (const row of rows) {
    let choice: BackendChoice | undefined;
    const err = thrown(() => (choice = row.forcedBy === undefined ? chooseCryptoBackend(row.requested, row.env) : chooseCryptoBackend(row.requested, row.env, row.forcedBy)));
    if (row.want.startsWith('QKDGW_E_')) {
      t.equal(err?.code, row.want, `${row.name}: throws`);
      for (const s of row.says) t.ok((err?.message ?? '').includes(s), `${row.name}: message says "${s}"`);
    } else {
      t.equal(err, undefined, `${row.name}: no throw`);
      t.equal(choice?.backend.name, row.want, `${row.name}: chose ${row.want}`);
      for (const s of row.says) t.ok((choice?.why ?? '').includes(s), `${row.name}: why says "${s}"`);
    }
  }
  t.notOk(existsSync(marker), 'the .js override was never executed');
});

// /proc/self/maps lists every file the process has mapped: a dlopen'd addon shows up there.
withNative(t, 'chooseCryptoBackend: node or noble forced does not load the addon at all (/proc/self/maps)', (t, _b, real) => {
  if (!existsSync('/proc/self/maps')) {
    t.pass('not run: no /proc/self/maps on this system');
    return;
  }
  const dir = t.testdir({});
  const mapped = (p: string): boolean => readFileSync('/proc/self/maps', 'utf8').includes(p);
  for (const requested of ['node', 'noble'] as const) {
    const copy = join(dir, `never-${requested}.node`);
    copyFileSync(real.path, copy);
    const c = chooseCryptoBackend(requested, { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: copy });
    t.equal(c.backend.name, requested, `${requested} chosen`);
    t.same(c.reports.map((r) => r.name), [requested], `only ${requested} was tested`);
    t.notOk(mapped(copy), `${requested} forced: ${copy} was not dlopen'd`);
  }
  // Control: the same check sees an addon that IS loaded.
  const loaded = join(dir, 'loaded-auto.node');
  copyFileSync(real.path, loaded);
  t.equal(chooseCryptoBackend('auto', { QKDGW_NATIVE_ADDON: loaded }).backend.name, 'native', 'auto loads the copy');
  t.ok(mapped(loaded), 'and then it is in /proc/self/maps');
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

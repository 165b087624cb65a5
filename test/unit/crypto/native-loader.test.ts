// Issue 3: the addon loader never throws, it says why the addon is unavailable
// (src/crypto/native/loader.ts), and the daemon's reading of QKDGW_NATIVE /
// QKDGW_NATIVE_ADDON (src/daemon/crypto-backend.ts).
//
// Security review hardening: only a regular file ending in `.node` reaches dlopen (a .js
// or .json is never executed, a FIFO or /dev/zero never opened), a truncated addon is
// refused by the ELF pre-flight check (src/crypto/native/elf-check.ts) instead of
// SIGBUSing the process, and the ABI/surface checks run on the exports (checkBinding).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NATIVE_ABI } from '../../../src/crypto/native/binding.js';
import { elfProblem } from '../../../src/crypto/native/elf-check.js';
import { checkBinding, DEFAULT_ADDON_PATH, loadNative, type NativeStatus } from '../../../src/crypto/native/loader.js';
import { nativeFromEnv, nativeSwitch } from '../../../src/daemon/crypto-backend.js';
import { ErrorCodes } from '../../../src/errors.js';
import { nativeStatus, withNative } from '../../vectors/aead-backends.js';
import { codeOf } from '../../vectors/load.js';

/** Every function name of NativeBinding (binding.ts), in the loader's order. */
const FUNCTIONS = ['gcmNew', 'gcmFree', 'gcmSeal', 'gcmOpen', 'gcmSealAt', 'gcmOpenAt', 'gcmSealBatch', 'gcmOpenBatch', 'sdNotify'] as const;
const fn = (): number => 0;
/** An exports object that passes the ABI and surface checks (its functions do nothing). */
const complete = (abi: unknown = NATIVE_ABI): Record<string, unknown> => Object.fromEntries([['abi', abi], ...FUNCTIONS.map((k) => [k, fn])]);

const reasonOf = (s: NativeStatus): string => (s.available ? '' : s.reason);

/** A test dir (CommonJS, so a .js there WOULD run if required) with `marker` that executed code creates. */
function markerDir(t: Test): { dir: string; marker: string; evilJs: string } {
  const dir = t.testdir({ 'package.json': JSON.stringify({ type: 'commonjs' }) });
  const marker = join(dir, 'EXECUTED');
  const evilJs = `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'this file was executed');\nmodule.exports = ${JSON.stringify({ abi: NATIVE_ABI })};\n`;
  return { dir, marker, evilJs };
}

t.test('loadNative: a missing file is unavailable with a reason naming the path', async (t) => {
  const path = join(t.testdir({}), 'nope', 'qkdgw_native.node');
  const s = loadNative({ path });
  t.equal(s.available, false);
  t.equal(s.path, path);
  t.equal(reasonOf(s), `no addon at ${path}`, 'a path given by the operator is reported as such');
  t.notMatch(reasonOf(s), /build:native/, 'no build hint for an operator-chosen path');
});

t.test('loadNative: the default path is native/build/Release/qkdgw_native.node of this package; missing, it says how to build it', async (t) => {
  t.match(DEFAULT_ADDON_PATH, /native[/\\]build[/\\]Release[/\\]qkdgw_native\.node$/);
  const s = loadNative();
  t.equal(s.path, DEFAULT_ADDON_PATH);
  if (!s.available && !existsSync(DEFAULT_ADDON_PATH)) {
    t.match(s.reason, /addon not built/);
    t.match(s.reason, /npm run build:native/);
  } else {
    t.ok(existsSync(DEFAULT_ADDON_PATH), 'the default addon exists (the not-built message is not reachable here)');
  }
});

t.test('loadNative: `disabled` wins, with that reason, without touching the file', async (t) => {
  const s = loadNative({ disabled: 'disabled by QKDGW_NATIVE=0' });
  t.same(s, { available: false, reason: 'disabled by QKDGW_NATIVE=0', path: DEFAULT_ADDON_PATH });
  const { dir, marker, evilJs } = markerDir(t);
  writeFileSync(join(dir, 'evil.node'), evilJs);
  const d = loadNative({ path: join(dir, 'evil.node'), disabled: 'operator said no' });
  t.same(d, { available: false, reason: 'operator said no', path: join(dir, 'evil.node') });
  t.notOk(existsSync(marker), 'nothing was executed');
});

t.test('loadNative: .js, .json and directories are refused WITHOUT executing anything', async (t) => {
  const { dir, marker, evilJs } = markerDir(t);
  writeFileSync(join(dir, 'evil.js'), evilJs);
  writeFileSync(join(dir, 'evil.cjs'), evilJs);
  writeFileSync(join(dir, 'evil.json'), JSON.stringify(complete()));
  writeFileSync(join(dir, 'evil.node.js'), evilJs);
  writeFileSync(join(dir, 'evil'), evilJs);
  // JavaScript under the right name: refused by the ELF check, and dlopen would not run it anyway.
  writeFileSync(join(dir, 'js-inside.node'), evilJs);
  mkdirSync(join(dir, 'folder.node'));
  mkdirSync(join(dir, 'folder'));
  const cases: Array<[string, RegExp]> = [
    ['evil.js', /does not end in \.node$/],
    ['evil.cjs', /does not end in \.node$/],
    ['evil.json', /does not end in \.node$/],
    ['evil.node.js', /does not end in \.node$/],
    ['evil', /does not end in \.node$/],
    ['js-inside.node', /is not a loadable addon: not an ELF shared object$/],
    ['folder.node', /is not a regular file$/],
    ['folder', /is not a regular file$/],
  ];
  for (const [name, why] of cases) {
    const path = join(dir, name);
    let s: NativeStatus | undefined;
    t.doesNotThrow(() => (s = loadNative({ path })), `${name}: no throw`);
    t.equal(s?.available, false, `${name}: refused`);
    t.match(s && reasonOf(s), why, `${name}: ${why}`);
    t.match(s && reasonOf(s), path, `${name}: the reason names the path`);
    t.equal(s?.path, path);
  }
  t.notOk(existsSync(marker), 'no file was executed (the marker a run would write does not exist)');
  // The override goes through the same gate.
  const env = nativeFromEnv({ QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: join(dir, 'evil.js') });
  t.equal(env.available, false, 'QKDGW_NATIVE_ADDON=evil.js refused too');
  t.notOk(existsSync(marker), 'and not executed either');
});

t.test('loadNative: a FIFO and /dev/zero are refused at once (no open, no hang)', async (t) => {
  const dir = t.testdir({});
  const fifo = join(dir, 'fifo.node');
  const mk = spawnSync('mkfifo', [fifo], { encoding: 'utf8' });
  const paths: string[] = [];
  if (mk.status === 0) paths.push(fifo);
  else t.comment(`FIFO case not run: mkfifo failed (${mk.error?.message ?? mk.stderr.trim()})`);
  if (existsSync('/dev/zero')) {
    paths.push('/dev/zero');
    // Named like an addon: the name must not be what lets it through.
    symlinkSync('/dev/zero', join(dir, 'zero.node'));
    paths.push(join(dir, 'zero.node'));
  }
  if (paths.length === 0) {
    t.pass('no FIFO or /dev/zero on this system');
    return;
  }
  for (const path of paths) {
    // A hang here (open() of a FIFO without a writer, or mapping /dev/zero) would block
    // this thread: tap's per-file timeout then fails the file.
    const t0 = performance.now();
    const s = loadNative({ path });
    const ms = performance.now() - t0;
    t.equal(s.available, false, `${path}: refused`);
    t.match(reasonOf(s), /is not a regular file$/, `${path}: because it is not a regular file`);
    t.ok(ms < 1000, `${path}: at once (${ms.toFixed(1)} ms)`);
  }
});

t.test('loadNative: a file that is not an ELF object is refused by the pre-flight check, without throwing', async (t) => {
  const dir = t.testdir({ 'junk.node': 'this is not an ELF shared object\n', 'empty.node': '' });
  for (const f of ['junk.node', 'empty.node']) {
    const path = join(dir, f);
    let s: NativeStatus | undefined;
    t.doesNotThrow(() => (s = loadNative({ path })), `${f}: no throw`);
    t.equal(s?.available, false, `${f}: unavailable`);
    if (s && !s.available) {
      t.equal(s.reason, `${path} is not a loadable addon: not an ELF shared object`, `${f}: reason`);
      t.equal(s.path, path);
    }
  }
});

t.test('loadNative: a real ELF object that is not a Node addon fails dlopen with a one-line reason', async (t) => {
  const dir = t.testdir({ 'plain.c': 'int qkdgw_not_an_addon(void) { return 42; }\n' });
  const so = join(dir, 'plain.node');
  const cc = spawnSync(process.env.CC || 'cc', ['-shared', '-fPIC', '-o', so, join(dir, 'plain.c')], { encoding: 'utf8', timeout: 60_000 });
  if (cc.status !== 0) {
    t.pass(`not run: cc failed (${cc.error?.message ?? cc.stderr.trim().split('\n')[0]})`);
    return;
  }
  t.equal(elfProblem(so), null, 'it passes the ELF pre-flight check');
  const s = loadNative({ path: so });
  t.equal(s.available, false, 'refused');
  t.match(reasonOf(s), /^addon failed to load: \S/, 'reason says dlopen failed');
  t.notMatch(reasonOf(s), /\n/, 'reason is one line');
});

t.test('loadNative: truncated copies of the real addon are refused (truncation named) and the process survives', async (t) => {
  const real = nativeStatus();
  if (!real.available) {
    withNative(t, 'truncated addon', () => {});
    return;
  }
  const whole = readFileSync(real.path);
  const dir = t.testdir({});
  for (const len of [20_000, 64, 1000, 4096, whole.length - 1]) {
    const path = join(dir, `cut-${len}.node`);
    writeFileSync(path, whole.subarray(0, len));
    const s = loadNative({ path });
    t.equal(s.available, false, `first ${len} bytes: refused`);
    t.match(reasonOf(s), /truncated/, `first ${len} bytes: the reason mentions truncation`);
    t.match(reasonOf(s), /is not a loadable addon/, `first ${len} bytes: by the pre-flight check, before dlopen`);
  }
  // Still alive, and the real addon still works after all that.
  const ctx = real.binding.gcmNew(Buffer.alloc(32, 1));
  t.equal(real.binding.gcmSeal(ctx, Buffer.alloc(12), Buffer.from('alive'), Buffer.alloc(0), Buffer.alloc(21)), 21, 'the process survived and still seals');
  real.binding.gcmFree(ctx);
});

withNative(t, 'loadNative: a copy of the real addon under another name ending in .node loads, and is cached by path', (t, _b, real) => {
  const path = join(t.testdir({}), 'renamed-copy.node');
  copyFileSync(real.path, path);
  const s = loadNative({ path });
  t.equal(s.available, true, 'loads');
  t.equal(s.path, path);
  t.equal(loadNative({ path }), s, 'the second load returns the cached status');
  if (s.available) {
    t.equal(s.binding.abi, NATIVE_ABI);
    const ctx = s.binding.gcmNew(Buffer.alloc(32, 7));
    const out = Buffer.alloc(16 + 3);
    t.equal(s.binding.gcmSeal(ctx, Buffer.alloc(12), Buffer.from('abc'), Buffer.alloc(0), out), 19, 'and seals');
    s.binding.gcmFree(ctx);
  }
});

t.test('checkBinding: the ABI and surface checks of a loaded addon', async (t) => {
  const good = complete();
  const ok = checkBinding(good, '/x/good.node');
  t.equal(ok.available, true, `a complete ABI-${NATIVE_ABI} surface is available`);
  if (ok.available) {
    t.equal(ok.binding, good, 'the binding is the exports object itself');
    t.equal(ok.path, '/x/good.node');
  }
  const abi99 = checkBinding(complete(99), '/x/a.node');
  t.equal(reasonOf(abi99), `addon ABI 99 differs from the expected ${NATIVE_ABI}: rebuild it`, 'another ABI: found, expected, and what to do');
  t.equal(abi99.path, '/x/a.node');
  for (const [what, exports] of [
    ['no abi', { gcmNew: fn }],
    ['abi as a string', complete(String(NATIVE_ABI))],
    ['abi 1 (the old surface)', complete(1)],
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['a function', fn],
  ] as const) {
    const s = checkBinding(exports, '/x/b.node');
    t.equal(s.available, false, `${what}: refused`);
    t.match(reasonOf(s), new RegExp(`^addon ABI .* differs from the expected ${NATIVE_ABI}: rebuild it$`), `${what}: the reason is about the ABI`);
  }
  const lacks = checkBinding({ abi: NATIVE_ABI, gcmNew: fn, gcmSeal: fn, gcmOpen: fn, gcmSealAt: fn, gcmOpenAt: fn, gcmSealBatch: fn, gcmFree: 'not a function' }, '/x/c.node');
  t.equal(reasonOf(lacks), 'addon lacks gcmFree, gcmOpenBatch, sdNotify: rebuild it', 'lists exactly what is missing or not a function');
  const none = checkBinding({ abi: NATIVE_ABI }, '/x/d.node');
  t.equal(reasonOf(none), `addon lacks ${FUNCTIONS.join(', ')}: rebuild it`, 'every function listed when none is there');
  const real = nativeStatus();
  if (real.available) t.equal(checkBinding(real.binding, real.path).available, true, 'the real addon passes');
});

/** A 64-bit ELF header (64 bytes) with the given fields; defaults describe a shared object with one program header at 64. */
function elfHeader(f: { cls?: number; data?: number; type?: number; phoff?: number; phentsize?: number; phnum?: number; shoff?: number; shentsize?: number; shnum?: number } = {}): Buffer {
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = f.cls ?? 2;
  h[5] = f.data ?? 1;
  h[6] = 1;
  h.writeUInt16LE(f.type ?? 3, 16);
  h.writeUInt16LE(62, 18); // EM_X86_64; not checked
  h.writeBigUInt64LE(BigInt(f.phoff ?? 64), 32);
  h.writeBigUInt64LE(BigInt(f.shoff ?? 0), 40);
  h.writeUInt16LE(64, 52);
  h.writeUInt16LE(f.phentsize ?? 56, 54);
  h.writeUInt16LE(f.phnum ?? 1, 56);
  h.writeUInt16LE(f.shentsize ?? 64, 58);
  h.writeUInt16LE(f.shnum ?? 0, 60);
  return h;
}

/** One 56-byte program header. */
function programHeader(type: number, offset: number, filesz: number): Buffer {
  const p = Buffer.alloc(56);
  p.writeUInt32LE(type, 0);
  p.writeBigUInt64LE(BigInt(offset), 8);
  p.writeBigUInt64LE(BigInt(filesz), 32);
  return p;
}

t.test('elfProblem table: junk, wrong class, wrong type and truncation are named; a sound header passes', async (t) => {
  const PT_LOAD = 1;
  const PT_NOTE = 4;
  const body = Buffer.alloc(200);
  const rows: Array<[string, Buffer, RegExp | null]> = [
    ['empty file', Buffer.alloc(0), /^not an ELF shared object$/],
    ["'ELF' junk", Buffer.from('ELF junk, not a header at all '.repeat(4)), /^not an ELF shared object$/],
    ['ELF magic then nothing', Buffer.from('\x7fELF', 'latin1'), /^not an ELF shared object$/],
    ['ELF magic, 40 bytes', Buffer.concat([Buffer.from('\x7fELF', 'latin1'), Buffer.alloc(36, 2)]), /^not an ELF shared object$/],
    ['32-bit class', Buffer.concat([elfHeader({ cls: 1 }), programHeader(PT_LOAD, 0, 64), body]), /^not a 64-bit little-endian ELF object$/],
    ['big-endian', Buffer.concat([elfHeader({ data: 2 }), programHeader(PT_LOAD, 0, 64), body]), /^not a 64-bit little-endian ELF object$/],
    ['ET_EXEC (not ET_DYN)', Buffer.concat([elfHeader({ type: 2 }), programHeader(PT_LOAD, 0, 64), body]), /e_type is not ET_DYN/],
    ['ET_REL (not ET_DYN)', Buffer.concat([elfHeader({ type: 1 }), programHeader(PT_LOAD, 0, 64), body]), /e_type is not ET_DYN/],
    ['ET_CORE (not ET_DYN)', Buffer.concat([elfHeader({ type: 4 }), programHeader(PT_LOAD, 0, 64), body]), /e_type is not ET_DYN/],
    ['no program headers', Buffer.concat([elfHeader({ phnum: 0 }), body]), /no program headers/],
    ['program headers cut off', Buffer.concat([elfHeader({ phnum: 4 }), programHeader(PT_LOAD, 0, 64)]), /program headers reach past the end of the file \(120 bytes\): truncated\?/],
    ['program header entry too small', Buffer.concat([elfHeader({ phentsize: 32 }), programHeader(PT_LOAD, 0, 64), body]), /program headers reach past/],
    ['section headers past the end', Buffer.concat([elfHeader({ shoff: 300, shnum: 10 }), programHeader(PT_LOAD, 0, 64), body]), /section headers reach past the end .*truncated\?/],
    ['a loadable segment past the end', Buffer.concat([elfHeader(), programHeader(PT_LOAD, 64, 100_000), body]), /a loadable segment reaches past the end of the file \(320 bytes\): truncated\?/],
    ['a non-loadable segment past the end is not its business', Buffer.concat([elfHeader(), programHeader(PT_NOTE, 64, 100_000), body]), null],
    ['sound header, segment inside the file', Buffer.concat([elfHeader({ shoff: 120, shnum: 2 }), programHeader(PT_LOAD, 0, 320), body]), null],
  ];
  const dir = t.testdir({});
  for (const [name, bytes, want] of rows) {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.node`);
    writeFileSync(path, bytes);
    const got = elfProblem(path);
    if (want === null) t.equal(got, null, `${name}: no problem`);
    else t.match(got, want, `${name}: ${want}`);
  }
  t.match(elfProblem(join(dir, 'missing.node')), /^cannot open it: /, 'a missing file: cannot open it');
  const real = nativeStatus();
  if (real.available) {
    t.equal(elfProblem(real.path), null, 'the real addon passes');
    const cut = join(dir, 'real-cut.node');
    writeFileSync(cut, readFileSync(real.path).subarray(0, 20_000));
    t.match(elfProblem(cut), /truncated/, 'its first 20,000 bytes: truncated');
  }
});

t.test('nativeSwitch / nativeFromEnv: QKDGW_NATIVE is 0, 1 or unset/empty; anything else is CRYPTO_BACKEND', async (t) => {
  t.equal(nativeSwitch({}), null, 'unset: no opinion');
  t.equal(nativeSwitch({ QKDGW_NATIVE: '' }), null, 'empty: no opinion (as unset)');
  t.equal(nativeSwitch({ QKDGW_NATIVE: '0' }), 'off');
  t.equal(nativeSwitch({ QKDGW_NATIVE: '1' }), 'on');
  const off = nativeFromEnv({ QKDGW_NATIVE: '0' });
  t.same(off, { available: false, reason: 'disabled by QKDGW_NATIVE=0', path: DEFAULT_ADDON_PATH }, 'QKDGW_NATIVE=0 disables, reason names the variable');
  t.equal(nativeFromEnv({ QKDGW_NATIVE: '' }).path, DEFAULT_ADDON_PATH, 'QKDGW_NATIVE= (empty) loads the default');
  for (const v of ['false', 'off', 'no', 'OFF', 'False', 'true', 'on', 'yes', 'banana', '2', '00', '01', 'enabled', ' 1', '0 ', ' ', '1\n']) {
    t.equal(codeOf(() => nativeSwitch({ QKDGW_NATIVE: v })), ErrorCodes.CRYPTO_BACKEND, `QKDGW_NATIVE=${JSON.stringify(v)} refused`);
    t.equal(codeOf(() => nativeFromEnv({ QKDGW_NATIVE: v })), ErrorCodes.CRYPTO_BACKEND, `nativeFromEnv too, for ${JSON.stringify(v)}`);
  }
  let msg = '';
  try {
    nativeFromEnv({ QKDGW_NATIVE: 'off' });
  } catch (e) {
    msg = (e as Error).message;
  }
  t.match(msg, /QKDGW_NATIVE="off"/, 'the message quotes the value');
  t.match(msg, /use 0 .* or 1/, 'and says what is understood');
});

t.test('nativeFromEnv: QKDGW_NATIVE_ADDON overrides the path; QKDGW_NATIVE=0 beats it', async (t) => {
  const missing = join(t.testdir({}), 'elsewhere.node');
  const s = nativeFromEnv({ QKDGW_NATIVE_ADDON: missing });
  t.equal(s.path, missing, 'the override path was tried');
  t.equal(reasonOf(s), `no addon at ${missing}`, 'reason names the override path');
  const off = nativeFromEnv({ QKDGW_NATIVE: '0', QKDGW_NATIVE_ADDON: missing });
  t.equal(reasonOf(off), 'disabled by QKDGW_NATIVE=0', 'QKDGW_NATIVE=0 beats the override');
  t.equal(off.path, missing);
  t.equal(nativeFromEnv({ QKDGW_NATIVE_ADDON: '' }).path, DEFAULT_ADDON_PATH, 'an empty override means the default path');
  t.equal(nativeFromEnv({}).path, DEFAULT_ADDON_PATH, 'no variables: the default path');
  const real = nativeStatus();
  if (real.available) {
    const alt = nativeFromEnv({ QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: real.path });
    t.equal(alt.available, true, 'a loadable override is used');
    t.equal(alt.path, real.path);
  }
});

t.test('nativeFromEnv: a relative QKDGW_NATIVE_ADDON is resolved against process.cwd(), never against the loader', async (t) => {
  const dir = t.testdir({ sub: {} });
  const abs = join(dir, 'sub', 'rel.node');
  const real = nativeStatus();
  if (real.available) copyFileSync(real.path, abs);
  const rel = relative(process.cwd(), abs);
  t.notOk(isAbsolute(rel), `the override is relative: ${rel}`);
  const s = nativeFromEnv({ QKDGW_NATIVE_ADDON: rel });
  t.equal(s.path, abs, 'resolved against the working directory');
  if (real.available) t.equal(s.available, true, 'and the copy there loads');
  else t.equal(reasonOf(s), `no addon at ${abs}`);
  // After a chdir the same relative spelling means another file.
  const home = process.cwd();
  process.chdir(join(dir, 'sub'));
  try {
    t.equal(nativeFromEnv({ QKDGW_NATIVE_ADDON: 'rel.node' }).path, join(process.cwd(), 'rel.node'), "'rel.node' from sub/ is sub/rel.node");
    t.equal(nativeFromEnv({ QKDGW_NATIVE_ADDON: './other.node' }).path, join(process.cwd(), 'other.node'));
    t.equal(loadNative({ path: '../x.node' }).path, join(dirname(process.cwd()), 'x.node'), 'loadNative itself resolves the same way');
  } finally {
    process.chdir(home);
  }
});

// Issue 3: the addon loader never throws, it says why the addon is unavailable
// (src/crypto/native/loader.ts), and the daemon's reading of QKDGW_NATIVE /
// QKDGW_NATIVE_ADDON (src/daemon/crypto-backend.ts).
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NATIVE_ABI } from '../../../src/crypto/native/binding.js';
import { DEFAULT_ADDON_PATH, loadNative } from '../../../src/crypto/native/loader.js';
import { nativeFromEnv } from '../../../src/daemon/crypto-backend.js';
import { ErrorCodes } from '../../../src/errors.js';
import { codeOf } from '../../vectors/load.js';

/**
 * Writes CommonJS modules posing as addons into a fresh test dir (with a package.json
 * saying commonjs, since the repo's own says "type": "module"). `files` maps file name
 * to the JS source of its module.exports. Returns the directory.
 */
function fakeAddons(t: Test, files: Record<string, string>): string {
  const dir = t.testdir({ 'package.json': JSON.stringify({ type: 'commonjs' }) });
  for (const [name, src] of Object.entries(files)) writeFileSync(join(dir, name), `module.exports = ${src};\n`);
  return dir;
}

/**
 * A module whose every property but `abi` is a function: it passes the loader's check of
 * the binding's functions whatever list the loader holds.
 */
const complete = (abi: number): string => `new Proxy({ abi: ${abi} }, { get: (o, k) => (k in o ? o[k] : function () { return 0; }) })`;
const fn = 'function () { return 0; }';

t.test('loadNative: a missing file is unavailable with a reason naming the path', async (t) => {
  const path = join(t.testdir({}), 'nope', 'qkdgw_native.node');
  const s = loadNative({ path });
  t.equal(s.available, false);
  t.equal(s.path, path);
  if (!s.available) {
    t.match(s.reason, path, 'reason names the path');
    t.match(s.reason, /not built/, 'reason says the addon is not built');
    t.match(s.reason, /npm run build:native/, 'and how to build it');
  }
});

t.test('loadNative: `disabled` wins, with that reason, without touching the file', async (t) => {
  const s = loadNative({ disabled: 'disabled by QKDGW_NATIVE=0' });
  t.same(s, { available: false, reason: 'disabled by QKDGW_NATIVE=0', path: DEFAULT_ADDON_PATH });
  const dir = fakeAddons(t, { 'good.js': complete(NATIVE_ABI) });
  const d = loadNative({ path: join(dir, 'good.js'), disabled: 'operator said no' });
  t.equal(d.available, false, 'a loadable addon is still refused when disabled');
  if (!d.available) t.equal(d.reason, 'operator said no');
});

t.test('loadNative: a file that is not an addon fails to load, without throwing', async (t) => {
  const dir = t.testdir({ 'junk.node': 'this is not an ELF shared object\n', 'empty.node': '' });
  for (const f of ['junk.node', 'empty.node']) {
    const path = join(dir, f);
    let s: ReturnType<typeof loadNative> | undefined;
    t.doesNotThrow(() => (s = loadNative({ path })), `${f}: no throw`);
    t.equal(s?.available, false, `${f}: unavailable`);
    if (s && !s.available) {
      t.match(s.reason, /^addon failed to load: /, `${f}: reason says it failed to load`);
      t.notMatch(s.reason, /\n/, `${f}: reason is one line`);
      t.equal(s.path, path);
    }
  }
});

t.test('loadNative: a module with another ABI or missing functions is refused', async (t) => {
  const dir = fakeAddons(t, {
    'abi99.js': complete(99),
    'noabi.js': `{ gcmNew: ${fn} }`,
    'abistring.js': `{ abi: '${NATIVE_ABI}', gcmNew: ${fn} }`,
    'lacks.js': `{ abi: ${NATIVE_ABI}, gcmNew: ${fn}, gcmSeal: ${fn}, gcmOpen: ${fn}, gcmSealBatch: ${fn}, gcmFree: 'not a function' }`,
    'throws.js': `(() => { throw new Error('boom at load\\nsecond line'); })()`,
  });
  const s99 = loadNative({ path: join(dir, 'abi99.js') });
  t.equal(s99.available, false, 'abi 99 refused');
  if (!s99.available) {
    t.match(s99.reason, /ABI/, 'reason mentions the ABI');
    t.match(s99.reason, /99/, 'and the ABI found');
    t.match(s99.reason, new RegExp(`expected ${NATIVE_ABI}`), 'and the ABI expected');
    t.match(s99.reason, /rebuild/, 'and says to rebuild');
  }
  for (const f of ['noabi.js', 'abistring.js']) {
    const s = loadNative({ path: join(dir, f) });
    t.equal(s.available, false, `${f} refused`);
    if (!s.available) t.match(s.reason, /ABI/, `${f}: reason mentions the ABI`);
  }
  const lacks = loadNative({ path: join(dir, 'lacks.js') });
  t.equal(lacks.available, false, 'a module missing functions is refused');
  if (!lacks.available) {
    t.match(lacks.reason, /^addon lacks (\w+, )*gcmFree, (\w+, )*gcmOpenBatch: rebuild it$/, 'reason lists what is missing (gcmFree is not a function)');
    t.notMatch(lacks.reason, /gcmNew|gcmSeal,|gcmOpen,|gcmSealBatch/, 'and only that');
  }
  const thr = loadNative({ path: join(dir, 'throws.js') });
  t.equal(thr.available, false, 'a module that throws while loading is refused');
  if (!thr.available) t.equal(thr.reason, 'addon failed to load: boom at load', 'reason is the first line of the error');
});

t.test('loadNative: a matching module is available and cached by path', async (t) => {
  const dir = fakeAddons(t, { 'good.js': complete(NATIVE_ABI) });
  const path = join(dir, 'good.js');
  const s = loadNative({ path });
  t.equal(s.available, true);
  t.equal(s.path, path);
  t.equal(loadNative({ path }), s, 'the second load returns the cached status');
});

t.test('loadNative: the default path is native/build/Release/qkdgw_native.node of this package', async (t) => {
  t.match(DEFAULT_ADDON_PATH, /native[/\\]build[/\\]Release[/\\]qkdgw_native\.node$/);
  t.equal(loadNative().path, DEFAULT_ADDON_PATH);
});

t.test('nativeFromEnv: QKDGW_NATIVE off values disable the addon with that reason', async (t) => {
  for (const v of ['0', 'false', 'off', 'no', 'OFF', 'False']) {
    const s = nativeFromEnv({ QKDGW_NATIVE: v });
    t.equal(s.available, false, `QKDGW_NATIVE=${v}: unavailable`);
    if (!s.available) t.equal(s.reason, `disabled by QKDGW_NATIVE=${v}`, `QKDGW_NATIVE=${v}: reason names the variable and value`);
  }
});

t.test('nativeFromEnv: an unknown QKDGW_NATIVE value is CRYPTO_BACKEND', async (t) => {
  for (const v of ['banana', '', '2', 'enabled', ' 1', '0 ']) {
    t.equal(codeOf(() => nativeFromEnv({ QKDGW_NATIVE: v })), ErrorCodes.CRYPTO_BACKEND, `QKDGW_NATIVE=${JSON.stringify(v)} refused`);
  }
  let msg = '';
  try {
    nativeFromEnv({ QKDGW_NATIVE: 'banana' });
  } catch (e) {
    msg = (e as Error).message;
  }
  t.match(msg, /"banana"/, 'the message quotes the value');
  t.match(msg, /use 0 .* or 1/, 'and says what is understood');
});

t.test('nativeFromEnv: QKDGW_NATIVE_ADDON overrides the path', async (t) => {
  const missing = join(t.testdir({}), 'elsewhere.node');
  const s = nativeFromEnv({ QKDGW_NATIVE_ADDON: missing });
  t.equal(s.path, missing, 'the override path was tried');
  t.equal(s.available, false);
  if (!s.available) t.match(s.reason, missing, 'reason names the override path');
  const dir = fakeAddons(t, { 'alt.js': complete(NATIVE_ABI) });
  const alt = nativeFromEnv({ QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: join(dir, 'alt.js') });
  t.equal(alt.available, true, 'a loadable override is used');
  t.equal(alt.path, join(dir, 'alt.js'));
  const off = nativeFromEnv({ QKDGW_NATIVE: '0', QKDGW_NATIVE_ADDON: join(dir, 'alt.js') });
  t.equal(off.available, false, 'QKDGW_NATIVE=0 beats the override');
  t.equal(nativeFromEnv({ QKDGW_NATIVE_ADDON: '' }).path, DEFAULT_ADDON_PATH, 'an empty override means the default path');
  t.equal(nativeFromEnv({}).path, DEFAULT_ADDON_PATH, 'no variables: the default path');
});

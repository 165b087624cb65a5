#!/usr/bin/env node
// Builds the optional C addon (native/) with node-gyp against Node's own headers.
//
// Runs as the package's `install` script, so it must never fail an install: without a
// compiler, headers or node-gyp it prints why and exits 0, and the daemon falls back to
// node:crypto (the loader reports the reason; `qkdgw selftest` shows it).
// `--required` (npm run build:native) makes a failed build exit 1 instead.
// QKDGW_NATIVE=0 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const required = process.argv.includes('--required');
const say = (m) => process.stderr.write(`qkdgw native: ${m}\n`);

function giveUp(why) {
  say(`addon not built: ${why}`);
  if (required) process.exit(1);
  say('the gateway will use the node:crypto AES-256-GCM backend (see `qkdgw selftest`)');
  process.exit(0);
}

// The gateway reads QKDGW_NATIVE the same way: 0 disables the addon, 1 requires it.
if (process.env.QKDGW_NATIVE === '0') giveUp('QKDGW_NATIVE=0 (an addon built earlier is left in place; the gateway will not load it)');

function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally: npm's own copy below
  }
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c));
}

// Node's own headers (with openssl/*.h) where the distribution installed them: using them
// avoids node-gyp's header download, which this appliance's network may not allow.
function findNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'openssl', 'evp.h')) ? prefix : undefined;
}

const gyp = findNodeGyp();
if (!gyp) giveUp('node-gyp not found (install npm or `npm i -g node-gyp`)');
const nodedir = findNodeDir();
// configure + build, not rebuild: rebuild cleans first, so a failed build (no compiler)
// would delete a working addon; make only replaces the .node once the link succeeded.
for (const step of ['configure', 'build']) {
  const args = [gyp, step, `--directory=${join(root, 'native')}`, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  if (r.error) giveUp(`node-gyp ${step} could not run: ${r.error.message}`);
  if (r.status !== 0) giveUp(`node-gyp ${step} exited with ${r.status ?? r.signal} (a C compiler, make and python3 are needed)`);
}

// Load it once here so a broken build is reported at install time, not at first start.
const addon = join(root, 'native', 'build', 'Release', 'qkdgw_native.node');
try {
  const m = { exports: {} };
  process.dlopen(m, addon);
  const b = m.exports;
  if (typeof b.gcmSeal !== 'function') throw new Error('gcmSeal missing');
  say(`built ${addon} (ABI ${b.abi})`);
} catch (e) {
  giveUp(`built but does not load: ${e.message}`);
}

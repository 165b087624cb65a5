#!/usr/bin/env node
// Assembles the installable directory (issue 5 point 7, docs/install.md) from the compiled
// dist/: build/qkdgw/ holds bin/, dist/ (only files that still have a source in src/),
// config/, systemd/, the native addon where the loader looks for it
// (native/build/Release/qkdgw_native.node), a package.json with the runtime fields, the
// README, and the production node_modules/ copied from this tree (the packages Node itself
// would resolve from package.json's dependencies, nothing else): no network, no npm.
// `cp -R build/qkdgw /opt/qkdgw-<version>` installs it (docs/install.md); node >= 20.19 is
// all it needs.
//
// usage: node scripts/assemble.mjs [--out DIR]      (default build/qkdgw)
//
// The new tree is made next to DIR and renamed into place, so DIR is either the old or
// the new assembly, never half of one. Dirs 0755, files 0644 (bin/qkdgw.js and the addon
// 0755) whatever the umask; nothing written holds a path of the build machine. Without a
// loadable addon (not built, QKDGW_NATIVE=0) it assembles without it and warns: the
// gateway then runs on node:crypto.
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ADDON_REL = join('native', 'build', 'Release', 'qkdgw_native.node');
/** package.json fields the installed directory needs (no scripts: nothing may build or fetch there). */
const RUNTIME_FIELDS = ['name', 'version', 'description', 'license', 'type', 'bin', 'engines', 'dependencies'];

const say = (m) => process.stderr.write(`assemble: ${m}\n`);
function fail(m) {
  say(m);
  process.exit(1);
}

const { values } = parseArgs({ options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
if (values.help) {
  process.stdout.write('usage: node scripts/assemble.mjs [--out DIR]   (default build/qkdgw; run after tsc)\n');
  process.exit(0);
}
const out = resolve(values.out ?? join(ROOT, 'build', 'qkdgw'));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) fail('dist/ is missing: run `tsc -p tsconfig.json` (npm run build) first');
// The old tree is deleted after the swap: refuse anything that could be the project or a
// folder that is not an earlier assembly.
if (out === ROOT || !relative(out, ROOT).startsWith('..')) fail(`--out ${out} would contain the project itself`);
if (existsSync(out) && readdirSync(out).length > 0 && !isAssembly(out)) fail(`${out} exists and is not an earlier qkdgw assembly: not replacing it`);

const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
const old = join(dirname(out), `.${basename(out)}.old-${process.pid}`);
let files = 0;
let bytes = 0;
/** Why the addon was left out, or null when it ships. */
let addon = null;

try {
  mkdirSync(dirname(tmp), { recursive: true });
  removeLeftovers();
  makeDir(tmp);
  copyTree(join(ROOT, 'bin'), join(tmp, 'bin'));
  chmodSync(join(tmp, 'bin', 'qkdgw.js'), 0o755);
  // tsc never deletes: a .js whose .ts was removed or renamed would ship as dead code.
  copyTree(join(ROOT, 'dist'), join(tmp, 'dist'), (rel) => hasSource(rel));
  copyTree(join(ROOT, 'config'), join(tmp, 'config'));
  copyTree(join(ROOT, 'systemd'), join(tmp, 'systemd'));
  for (const f of ['README.md', 'LICENSE', 'LICENSE.md', 'NOTICE']) if (existsSync(join(ROOT, f))) copyFile(join(ROOT, f), join(tmp, f));
  const runtime = Object.fromEntries(RUNTIME_FIELDS.filter((k) => k in pkg).map((k) => [k, pkg[k]]));
  writeFile(join(tmp, 'package.json'), `${JSON.stringify(runtime, null, 2)}\n`);
  // Without type declarations, TypeScript sources and source maps: Node never loads them,
  // and they are half of the files. Licences and READMEs stay.
  for (const dir of productionPackages()) copyTree(join(ROOT, dir), join(tmp, dir), (rel, isDir) => (isDir ? rel !== 'node_modules' : !/\.([cm]?ts|map)$/.test(rel)));
  addon = await addonProblem();
  if (addon === null) {
    copyFile(join(ROOT, ADDON_REL), join(tmp, ADDON_REL));
    chmodSync(join(tmp, ADDON_REL), 0o755);
  } else {
    say(`WARNING: assembling without the native addon (${addon}); the gateway will use node:crypto`);
  }
  // Swap: two renames in one folder; the window without `out` is between them.
  if (existsSync(out)) renameSync(out, old);
  renameSync(tmp, out);
  rmSync(old, { recursive: true, force: true });
} catch (e) {
  rmSync(tmp, { recursive: true, force: true });
  if (!existsSync(out) && existsSync(old)) renameSync(old, out);
  fail(`failed: ${e instanceof Error ? e.message : String(e)}`);
}

const shown = relative(process.cwd(), out);
const where = shown && !shown.startsWith('..') && !isAbsolute(shown) ? shown : out;
process.stdout.write(`assemble: ${where} ${(bytes / 2 ** 20).toFixed(1)} MiB, ${files} files, addon ${addon === null ? 'yes' : 'no'}\n`);

/** Removes the temporary and old folders of earlier runs that were killed (their pid is gone). */
function removeLeftovers() {
  const prefix = `.${basename(out)}.`;
  for (const name of readdirSync(dirname(out))) {
    const m = name.startsWith(prefix) ? /^(tmp|old)-(\d+)$/.exec(name.slice(prefix.length)) : null;
    if (m && !alive(Number(m[2]))) rmSync(join(dirname(out), name), { recursive: true, force: true });
  }
}

function alive(pid) {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** True when `dir` looks like an earlier output of this script. */
function isAssembly(dir) {
  try {
    const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    return p.name === pkg.name && existsSync(join(dir, 'bin', 'qkdgw.js')) && !('scripts' in p);
  } catch {
    return false;
  }
}

/** dist-relative `rel` (x/y.js, x/y.js.map) still has its src/x/y.ts (or .mts/.cts/same name). */
function hasSource(rel) {
  const base = rel.endsWith('.map') ? rel.slice(0, -4) : rel;
  const src = base.replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts').replace(/\.cjs$/, '.cts');
  return existsSync(join(ROOT, 'src', src));
}

/**
 * Folders (relative to the project, e.g. node_modules/@noble/curves) of every production
 * dependency, direct and transitive: `dependencies`, `optionalDependencies` and
 * `peerDependencies` of package.json and of each package reached, each found where Node's
 * own lookup finds it from the package that needs it (its node_modules/, then each parent's,
 * up to the project). So nested copies are included, and nothing that is merely lying in
 * node_modules/ (dev tools, extraneous packages) is. Each folder is copied without its own
 * node_modules/, whose needed packages are listed separately.
 * @throws Error when a dependency that is not optional is missing (run npm ci) or is a
 *   symbolic link (npm link, workspaces: not copied).
 */
function productionPackages() {
  const found = new Set();
  const queue = [{ dir: ROOT, manifest: pkg, who: pkg.name }];
  while (queue.length > 0) {
    const { dir, manifest, who } = queue.shift();
    const optional = new Set([
      ...Object.keys(manifest.optionalDependencies ?? {}),
      ...Object.entries(manifest.peerDependenciesMeta ?? {}).filter(([, m]) => m?.optional).map(([n]) => n),
    ]);
    const names = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
    for (const name of [...names].sort()) {
      const at = lookup(dir, name);
      if (at === null) {
        if (optional.has(name)) continue;
        throw new Error(`${name}, needed by ${who}, is not installed: run npm ci`);
      }
      const rel = relative(ROOT, at);
      if (found.has(rel)) continue;
      found.add(rel);
      queue.push({ dir: at, manifest: JSON.parse(readFileSync(join(at, 'package.json'), 'utf8')), who: name });
    }
  }
  return [...found].sort();
}

/** Where Node finds package `name` from folder `from`: the nearest node_modules/name, not above the project. */
function lookup(from, name) {
  for (let d = from; ; d = dirname(d)) {
    if (basename(d) !== 'node_modules') {
      const at = join(d, 'node_modules', name);
      if (existsSync(join(at, 'package.json'))) {
        if (lstatSync(at).isSymbolicLink()) throw new Error(`node_modules package ${relative(ROOT, at)} is a symbolic link (npm link or a workspace): not supported`);
        return at;
      }
    }
    if (d === ROOT || d === dirname(d)) return null;
  }
}

/** Why the built addon cannot ship (null: it loads and passes the ABI check). */
async function addonProblem() {
  if (process.env.QKDGW_NATIVE === '0') return 'QKDGW_NATIVE=0';
  const path = join(ROOT, ADDON_REL);
  if (!existsSync(path)) return `${ADDON_REL} not built`;
  // The loader's own checks (regular file, ELF for this machine, ABI, surface).
  const { loadNative } = await import(pathToFileURL(join(ROOT, 'dist', 'crypto', 'native', 'loader.js')).href);
  const st = loadNative({ path });
  return st.available ? null : st.reason;
}

/** Copies folder `from` to `to` (sorted, symlinks followed), keeping paths for which keep(rel, isDir) holds. */
function copyTree(from, to, keep = () => true, rel = '') {
  makeDir(to);
  for (const name of readdirSync(from).sort()) {
    const r = rel ? join(rel, name) : name;
    const src = join(from, name);
    const st = statSync(src);
    if (!keep(r, st.isDirectory())) continue;
    if (st.isDirectory()) copyTree(src, join(to, name), keep, r);
    else if (st.isFile()) copyFile(src, join(to, name), st.size);
  }
}

/** mkdir -p whose new folders are 0755 whatever the umask. */
function makeDir(dir) {
  if (existsSync(dir)) return;
  makeDir(dirname(dir));
  mkdirSync(dir);
  chmodSync(dir, 0o755);
}

function copyFile(from, to, size = statSync(from).size) {
  makeDir(dirname(to));
  copyFileSync(from, to);
  chmodSync(to, 0o644);
  files += 1;
  bytes += size;
}

function writeFile(to, text) {
  writeFileSync(to, text, { mode: 0o644 });
  chmodSync(to, 0o644);
  files += 1;
  bytes += Buffer.byteLength(text);
}

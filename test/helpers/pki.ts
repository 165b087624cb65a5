/**
 * Shared test PKI: `makeTestPki(t)` writes a complete qkdgw PKI (both CAs, KME, SAE and
 * gateway certificates) for gateways `gw-a`, `gw-b` and KMEs `KME_A`, `KME_B` into a tap
 * test folder and returns every path together with the PEM text.
 *
 * Generation (RSA 2048, ~1 s) happens once per process; later calls rewrite the cached
 * files, with the same modes (keys 0600, certs 0644), into the new folder.
 *
 * Note: tap's `t.testdir()` wipes the test folder each time it is called. If a test needs
 * its own fixtures too, create them first and pass `dir`:
 *   const root = t.testdir({ 'conf.yaml': '...' });
 *   const pki = await makeTestPki(t, { dir: join(root, 'pki') });
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initPki, issueCertificate, type IssueCertificateOptions, type PkiFilePair, type PkiLayout } from '../../src/pki/index.js';
import { ensurePkiDir, PKI_MODES, writeNewFile } from '../../src/pki/files.js';

export const TEST_GATEWAYS = ['gw-a', 'gw-b'] as const;
export const TEST_KMES = ['KME_A', 'KME_B'] as const;

/** A certificate and key: absolute paths plus the PEM text. */
export interface LoadedPair {
  certPath: string;
  keyPath: string;
  /** PEM text of the certificate. */
  cert: string;
  /** PEM text of the private key. */
  key: string;
}

export interface TestPki {
  dir: string;
  /** The paths, exactly as `initPki` returns them. */
  layout: PkiLayout;
  qkdCa: LoadedPair;
  controlCa: LoadedPair;
  /** By KME ID (`KME_A`, `KME_B`). */
  kmes: Record<string, LoadedPair>;
  /** By SAE ID (`gw-a`, `gw-b`). */
  saes: Record<string, LoadedPair>;
  /** By gateway identity (`gw-a`, `gw-b`). */
  gateways: Record<string, LoadedPair>;
  /**
   * Issues an extra certificate under the QKD CA (`qkd`) or the control CA (`control`),
   * e.g. wrong SAN, wrong EKU, expired. Uses a cached key unless `keyPem` is given, so it
   * costs only a signature.
   */
  issue(ca: 'qkd' | 'control' | 'none', opts: IssueCertificateOptions): Promise<{ cert: string; key: string }>;
}

/** The part of a tap Test we use (structural, so any tap version fits). */
export interface TestdirHost {
  testdir(fixture?: unknown): string;
}

let cache: Promise<Map<string, string>> | null = null;
let spareKey: Promise<string> | null = null;

/** Generates once and keeps every file's text by base name. */
async function generateOnce(scratch: string): Promise<Map<string, string>> {
  const layout = await initPki({ outDir: scratch, gateways: [...TEST_GATEWAYS], kmes: [...TEST_KMES] });
  const files = new Map<string, string>();
  for (const p of pairsOf(layout)) {
    for (const f of [p.cert, p.key]) files.set(f.slice(scratch.length + 1), await readFile(f, 'utf8'));
  }
  return files;
}

function pairsOf(layout: PkiLayout): PkiFilePair[] {
  return [layout.qkdCa, layout.controlCa, ...Object.values(layout.kmes), ...Object.values(layout.saes), ...Object.values(layout.gateways)];
}

function load(pair: PkiFilePair, files: Map<string, string>, dir: string): LoadedPair {
  const text = (p: string): string => files.get(p.slice(dir.length + 1)) as string;
  return { certPath: pair.cert, keyPath: pair.key, cert: text(pair.cert), key: text(pair.key) };
}

/**
 * Creates the test PKI in `opts.dir` (default: `<t.testdir()>/pki`).
 * @returns paths and PEM text for every file; see {@link TestPki}
 */
export async function makeTestPki(t: TestdirHost, opts: { dir?: string } = {}): Promise<TestPki> {
  const dir = opts.dir ?? join(t.testdir(), 'pki');
  let files: Map<string, string>;
  if (!cache) {
    cache = generateOnce(dir);
    files = await cache;
  } else {
    files = await cache;
    await ensurePkiDir(dir);
    for (const [name, text] of files) {
      await writeNewFile(join(dir, name), text, name.endsWith('.key') ? PKI_MODES.privateKey : PKI_MODES.certificate);
    }
  }
  // Recompute the layout for this folder (same names as initPki uses).
  const layout: PkiLayout = {
    outDir: dir,
    qkdCa: { cert: join(dir, 'qkd-ca.pem'), key: join(dir, 'qkd-ca.key') },
    controlCa: { cert: join(dir, 'control-ca.pem'), key: join(dir, 'control-ca.key') },
    kmes: Object.fromEntries(TEST_KMES.map((id) => [id, { cert: join(dir, `kme-${id}.pem`), key: join(dir, `kme-${id}.key`) }])),
    saes: Object.fromEntries(TEST_GATEWAYS.map((id) => [id, { cert: join(dir, `sae-${id}.pem`), key: join(dir, `sae-${id}.key`) }])),
    gateways: Object.fromEntries(TEST_GATEWAYS.map((id) => [id, { cert: join(dir, `gw-${id}.pem`), key: join(dir, `gw-${id}.key`) }])),
  };
  const mapLoad = (rec: Record<string, PkiFilePair>): Record<string, LoadedPair> =>
    Object.fromEntries(Object.entries(rec).map(([id, p]) => [id, load(p, files, dir)]));
  const qkdCa = load(layout.qkdCa, files, dir);
  const controlCa = load(layout.controlCa, files, dir);
  return {
    dir,
    layout,
    qkdCa,
    controlCa,
    kmes: mapLoad(layout.kmes),
    saes: mapLoad(layout.saes),
    gateways: mapLoad(layout.gateways),
    async issue(ca, o) {
      spareKey ??= (async () => (await issueCertificate({ commonName: 'spare' })).key)();
      const issuer = ca === 'qkd' ? qkdCa : ca === 'control' ? controlCa : undefined;
      const r = await issueCertificate({ ...o, issuer: o.issuer ?? issuer, keyPem: o.keyPem ?? (await spareKey) });
      return { cert: r.cert, key: r.key };
    },
  };
}

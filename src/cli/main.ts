/**
 * `qkdgw` subcommands (architecture.md L6). Returns the process exit status.
 */
import { runCommand } from './run.js';
import { kmeSimCommand } from './kme-sim.js';
import { pkiCommand } from './pki.js';
import { checkConfigCommand } from './check-config.js';
import { selftestCommand } from './selftest.js';
import { demoCommand } from './demo.js';
import { auditCommand } from './audit.js';
import { statusCommand } from './status.js';
import { Exit } from './exit-codes.js';

const USAGE = `qkdgw: QKD + ML-KEM-768 + X25519 encryption gateway

usage:
  qkdgw run --config FILE            run one gateway
  qkdgw kme-sim --config FILE [--admin HOST:PORT] [--key-rate BPS] [--max-keys N]
                [--paused] [--quirk NAME]... [--latency MS]
                                     run the ETSI GS QKD 014 KME simulator pair
  qkdgw kme-sim ctl --admin URL <state|link|faults|quirks|drain|add_keys|reset> [--json '{...}']
                                     drive a running simulator's admin endpoint (tests, demos)
  qkdgw pki init --out DIR --gateways ID,ID --kmes ID,ID [--force]
  qkdgw check-config [--kme-sim] [--no-file-checks] FILE
  qkdgw selftest [--backend B] [--json]  crypto known-answer tests, AEAD backends and the choice
  qkdgw demo [--keep] [--bytes SIZE] [--scenario basic|kme-outage]  the whole system on 127.0.0.1
  qkdgw audit verify FILE            check a key audit trail's hash chain (66: no such file)
  qkdgw status [--socket PATH | --config FILE] [--json]
                                     a running daemon's peers, epochs, traffic and key pools over
                                     its admin socket (69: no daemon answers, 77: permission denied)
  qkdgw --version

Every command also takes --help. Exit status: 0 ok, 1 failure, 64 usage, 78 configuration.
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(USAGE);
    return Exit.OK;
  }
  try {
    switch (cmd) {
      case 'run':
        return await runCommand(rest);
      case 'kme-sim':
        return await kmeSimCommand(rest);
      case 'pki':
        return await pkiCommand(rest);
      case 'check-config':
        return await checkConfigCommand(rest);
      case 'selftest':
        return await selftestCommand(rest);
      case 'demo':
        return await demoCommand(rest);
      case 'audit':
        return await auditCommand(rest);
      case 'status':
        return await statusCommand(rest);
      case '--version':
      case 'version': {
        const { createRequire } = await import('node:module');
        const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
        process.stdout.write(`qkdgw ${pkg.version} (node ${process.version})\n`);
        return Exit.OK;
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return cmd === undefined ? Exit.USAGE : Exit.OK;
      default:
        process.stderr.write(`qkdgw: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
        return Exit.USAGE;
    }
  } catch (e) {
    // parseArgs throws on unknown or malformed options.
    if (e instanceof TypeError && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`qkdgw ${cmd}: ${e.message}\n`);
      return Exit.USAGE;
    }
    throw e;
  }
}

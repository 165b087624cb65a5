#!/usr/bin/env node
// qkdgw command line: the compiled CLI lives in dist/ (npm install builds it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('qkdgw: dist/ is missing: run `npm install` (or `npm run build`) in the project folder first\n');
  process.exit(1);
}
// A closed pipe (`qkdgw selftest | head`) ends the command quietly; a full disk or another
// write error is one line, not a stack trace.
for (const [name, stream] of [['stdout', process.stdout], ['stderr', process.stderr]]) {
  stream.on('error', (e) => {
    if (e.code !== 'EPIPE' && name === 'stdout') {
      try {
        process.stderr.write(`qkdgw: cannot write to ${name}: ${e.code ?? e.message}\n`);
      } catch {
        // stderr is gone too
      }
    }
    process.exit(e.code === 'EPIPE' ? 0 : 1);
  });
}
const { main: run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));

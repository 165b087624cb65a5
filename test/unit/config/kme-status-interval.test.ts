// Breaker finding: kme.status_interval below 1 s made every status read time out (its
// deadline is min(5 s, interval)), flooding the log and blocking the recovery checks.
import t from 'tap';
import { loadGatewayConfig } from '../../../src/config/gateway.js';
import { ErrorCodes } from '../../../src/errors.js';
import { BASE, expectIssues, writeConfig } from './helpers.js';

t.test('kme.status_interval below 1 s is refused with its path; 1s is accepted', async (t) => {
  const dir = t.testdir();
  const withInterval = (v: string): string => BASE.replace('kme:\n', `kme:\n  status_interval: ${v}\n`);
  for (const v of ['1ms', '999ms']) {
    expectIssues(t, () => loadGatewayConfig(writeConfig(dir, `gw-${v}.yaml`, withInterval(v)), { checkFiles: false }), ErrorCodes.CONFIG_INVALID, [
      { line: 3, col: 20, path: 'kme.status_interval', msg: 'at least 1000 ms' },
    ]);
  }
  t.equal(loadGatewayConfig(writeConfig(dir, 'gw-1s.yaml', withInterval('1s')), { checkFiles: false }).kme.statusIntervalMs, 1000);
});

// Breaker finding: kme.status_interval 1ms flooded the KME and the log (every read timed
// out: its deadline was the interval). Below 100 ms is refused; reads get at least 1 s.
import t from 'tap';
import { loadGatewayConfig } from '../../../src/config/gateway.js';
import { ErrorCodes } from '../../../src/errors.js';
import { BASE, expectIssues, writeConfig } from './helpers.js';

t.test('kme.status_interval below 100 ms is refused with its path; 100ms is accepted', async (t) => {
  const dir = t.testdir();
  const withInterval = (v: string): string => BASE.replace('kme:\n', `kme:\n  status_interval: ${v}\n`);
  for (const v of ['1ms', '99ms']) {
    expectIssues(t, () => loadGatewayConfig(writeConfig(dir, `gw-${v}.yaml`, withInterval(v)), { checkFiles: false }), ErrorCodes.CONFIG_INVALID, [
      { line: 3, col: 20, path: 'kme.status_interval', msg: 'at least 100 ms' },
    ]);
  }
  t.equal(loadGatewayConfig(writeConfig(dir, 'gw-100ms.yaml', withInterval('100ms')), { checkFiles: false }).kme.statusIntervalMs, 100);
});

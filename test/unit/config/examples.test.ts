/**
 * Every YAML file shipped in config/ must load (with checkFiles: false: the examples
 * name PKI files that do not exist here), and the schemas must be valid JSON Schema
 * whose documented defaults match the code.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { defaultPolicy, gatewaySchema, loadGatewayConfig } from '../../../src/config/gateway.js';
import { schemaPath } from '../../../src/config/schemas.js';
import { loadSimulatorConfig } from '../../../src/config/simulator.js';
import { formatConfigError } from '../../../src/config/issues.js';

const configDir = dirname(schemaPath('qkdgw.schema.json'));
const yamls = readdirSync(configDir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));

t.ok(yamls.includes('gateway.example.yaml') && yamls.includes('kme-sim.example.yaml'), 'both examples are present');

for (const f of yamls) {
  t.test(`config/${f} loads`, async (t) => {
    const file = join(configDir, f);
    try {
      if (f.startsWith('kme-sim')) {
        const cfg = loadSimulatorConfig(file, { checkFiles: false });
        t.equal(cfg.kmes.length, 2);
      } else {
        const cfg = loadGatewayConfig(file, { checkFiles: false });
        t.ok(cfg.identity.length > 0);
        t.ok(Object.hasOwn(cfg.policies, 'default'));
      }
    } catch (e) {
      t.fail(`${f} does not load:\n${formatConfigError(e)}`);
    }
  });
}

t.test('the example documents protocol.md s6 defaults: its default policy equals defaultPolicy()', async (t) => {
  const cfg = loadGatewayConfig(join(configDir, 'gateway.example.yaml'), { checkFiles: false });
  t.same(cfg.policies.default, defaultPolicy());
});

t.test('the gateway schema declares draft 2020-12', async (t) => {
  t.equal(gatewaySchema().$schema, 'https://json-schema.org/draft/2020-12/schema');
});

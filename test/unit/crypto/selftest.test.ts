import t from 'tap';
import { runSelfTest, assertSelfTest } from '../../../src/crypto/selftest.js';
t.test('every known-answer test passes', async (t) => {
  const r = runSelfTest();
  t.ok(r.length >= 4);
  for (const x of r) t.ok(x.ok, x.name);
  t.doesNotThrow(() => assertSelfTest());
});

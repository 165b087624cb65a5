// Shared pieces of the ETSI 014 client tests: a client bound to a mock KME, and `rejects`.
import { Etsi014Client, type Etsi014ClientOptions } from '../../../src/kms/etsi014/index.js';
import { QkdgwError } from '../../../src/errors.js';
import { testCerts } from './certs.js';

/** A client with the test SAE certificate against `kme`, closed at teardown. */
export function mockClient(t: { teardown(fn: () => unknown): void }, kme: { url: string }, selfSaeId: string, over: Partial<Etsi014ClientOptions> = {}): Etsi014Client {
  const certs = testCerts();
  const c = new Etsi014Client({ baseUrl: kme.url, ca: certs.ca, cert: certs.saeA.cert, key: certs.saeA.key, selfSaeId, ...over });
  t.teardown(() => c.close());
  return c;
}

/** The QkdgwError `p` rejects with; throws when it resolves or rejects with anything else. */
export async function rejects(p: Promise<unknown>): Promise<QkdgwError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof QkdgwError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

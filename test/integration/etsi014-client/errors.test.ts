/**
 * Checklist C29: error answers with empty, HTML, {message}, {detail}, {message,details},
 * {title} and garbage bodies never crash parsing and map to the cause, with details
 * {status, kmeMessage <= 200 chars, path} and a retry class. Also non-JSON / non-UTF-8 200s.
 */
import t from 'tap';
import { Etsi014Client, classifyKmsError, isRetryableKmsError } from '../../../src/kms/etsi014/index.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { testCerts } from './certs.js';
import { startMockKme } from './mock-kme.js';
import { rejects } from './client-helpers.js';

const certs = testCerts();


type Op = 'status' | 'enc_keys' | 'dec_keys';
interface Case {
  name: string;
  op: Op;
  status: number;
  body: string | Buffer;
  type?: string;
  code: string;
  kmeMessage?: string | RegExp;
  retryable: boolean;
}

const HTML401 =
  '<!doctype html>\n<html lang=en>\n<title>401 Unauthorized</title>\n<h1>Unauthorized</h1>\n<p>The server could not verify that you are authorized.</p>\n';
const long = 'x'.repeat(500);

const cases: Case[] = [
  { name: '401 empty body (spec: no body)', op: 'enc_keys', status: 401, body: '', code: ErrorCodes.KMS_AUTH, kmeMessage: '', retryable: false },
  { name: '401 Flask HTML', op: 'status', status: 401, body: HTML401, type: 'text/html; charset=utf-8', code: ErrorCodes.KMS_AUTH, kmeMessage: 'Unauthorized', retryable: false },
  { name: '403 {message}', op: 'dec_keys', status: 403, body: '{"message":"forbidden"}', code: ErrorCodes.KMS_AUTH, kmeMessage: 'forbidden', retryable: false },
  { name: 'dec_keys 400 spec message', op: 'dec_keys', status: 400, body: '{"message":"one or more keys specified are not found on KME"}', code: ErrorCodes.KMS_KEY_UNAVAILABLE, kmeMessage: 'one or more keys specified are not found on KME', retryable: true },
  { name: 'dec_keys 404 arnika {message}', op: 'dec_keys', status: 404, body: '{"message":"key not found"}', code: ErrorCodes.KMS_KEY_UNAVAILABLE, kmeMessage: 'key not found', retryable: true },
  { name: 'dec_keys 404 thomasarmel text', op: 'dec_keys', status: 404, body: 'Element not found', type: 'text/plain', code: ErrorCodes.KMS_KEY_UNAVAILABLE, kmeMessage: 'Element not found', retryable: true },
  { name: 'enc_keys 503 simulator exhaustion', op: 'enc_keys', status: 503, body: '{"message":"insufficient key material"}', code: ErrorCodes.KMS_EXHAUSTED, kmeMessage: 'insufficient key material', retryable: true },
  { name: 'enc_keys 400 "not enough keys available"', op: 'enc_keys', status: 400, body: '{"message":"Not enough keys available"}', code: ErrorCodes.KMS_EXHAUSTED, retryable: true },
  { name: 'enc_keys 400 {detail} "key pool empty"', op: 'enc_keys', status: 400, body: '{"detail":"key pool empty"}', code: ErrorCodes.KMS_EXHAUSTED, kmeMessage: 'key pool empty', retryable: true },
  { name: 'enc_keys 503 HTML Service Unavailable is NOT exhaustion', op: 'enc_keys', status: 503, body: '<html><head><title>503 Service Unavailable</title></head><body>down</body></html>', type: 'text/html', code: ErrorCodes.KMS_UNAVAILABLE, kmeMessage: '503 Service Unavailable', retryable: true },
  { name: 'enc_keys 400 size message (spec)', op: 'enc_keys', status: 400, body: '{"message":"size shall be a multiple of 8"}', code: ErrorCodes.KMS_CONFIG, retryable: false },
  { name: 'enc_keys 400 extension message', op: 'enc_keys', status: 400, body: '{"message":"not all extension_mandatory parameters are supported","details":[{"extension_mandatory_unsupported":"abc_x"}]}', code: ErrorCodes.KMS_REQUEST, kmeMessage: /supported \(details: \[\{"extension_mandatory_unsupported":"abc_x"\}\]\)/, retryable: false },
  { name: 'enc_keys 422 FastAPI {message,details}', op: 'enc_keys', status: 422, body: '{"message":"Validation error","details":[{"loc":["body","number"],"msg":"value is not a valid integer"}]}', code: ErrorCodes.KMS_REQUEST, kmeMessage: /^Validation error \(details:/, retryable: false },
  { name: 'enc_keys 422 FastAPI {detail:[...]}', op: 'enc_keys', status: 422, body: '{"detail":[{"loc":["body"],"msg":"field required","type":"value_error.missing"}]}', code: ErrorCodes.KMS_REQUEST, kmeMessage: /field required/, retryable: false },
  { name: 'status 405 {message}', op: 'status', status: 405, body: '{"message":"method not allowed"}', code: ErrorCodes.KMS_REQUEST, retryable: false },
  { name: 'status 404 {detail}', op: 'status', status: 404, body: '{"detail":"Not Found"}', code: ErrorCodes.KMS_REQUEST, kmeMessage: 'Not Found', retryable: false },
  { name: 'status 400 Falcon {title}', op: 'status', status: 400, body: '{"title":"Bad SAE"}', code: ErrorCodes.KMS_REQUEST, kmeMessage: 'Bad SAE', retryable: false },
  { name: '409 conflict', op: 'enc_keys', status: 409, body: '', code: ErrorCodes.KMS_REQUEST, retryable: false },
  { name: '429 rate limited', op: 'enc_keys', status: 429, body: '', code: ErrorCodes.KMS_UNAVAILABLE, retryable: true },
  { name: '500 a-v-popov KeyError text', op: 'dec_keys', status: 500, body: 'Internal Server Error', type: 'text/plain', code: ErrorCodes.KMS_UNAVAILABLE, kmeMessage: 'Internal Server Error', retryable: true },
  { name: '504 empty', op: 'status', status: 504, body: '', code: ErrorCodes.KMS_UNAVAILABLE, retryable: true },
  { name: '503 broken JSON', op: 'enc_keys', status: 503, body: '{"message": "insuff', code: ErrorCodes.KMS_UNAVAILABLE, kmeMessage: '{"message": "insuff', retryable: true },
  { name: '500 binary garbage', op: 'status', status: 500, body: Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x1b, 0x5b]), type: 'application/octet-stream', code: ErrorCodes.KMS_UNAVAILABLE, retryable: true },
  { name: '400 very long message is truncated', op: 'status', status: 400, body: JSON.stringify({ message: long }), code: ErrorCodes.KMS_REQUEST, kmeMessage: /^x{199}…$/, retryable: false },
  { name: '302 redirect is not followed', op: 'status', status: 302, body: '', code: ErrorCodes.KMS_PROTOCOL, retryable: false },
  { name: '204 no content', op: 'enc_keys', status: 204, body: '', code: ErrorCodes.KMS_PROTOCOL, retryable: false },
  { name: '200 HTML', op: 'status', status: 200, body: '<html>oops</html>', type: 'text/html', code: ErrorCodes.KMS_PROTOCOL, retryable: false },
  { name: '200 invalid JSON', op: 'enc_keys', status: 200, body: '{"keys":[', code: ErrorCodes.KMS_PROTOCOL, retryable: false },
  { name: '200 invalid UTF-8', op: 'enc_keys', status: 200, body: Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), code: ErrorCodes.KMS_PROTOCOL, retryable: false },
  { name: '200 JSON in latin1 charset', op: 'status', status: 200, body: '{}', type: 'application/json; charset=iso-8859-1', code: ErrorCodes.KMS_PROTOCOL, retryable: false },
  { name: '200 empty body', op: 'status', status: 200, body: '', code: ErrorCodes.KMS_PROTOCOL, retryable: false },
];

t.test('etsi014-C29 error bodies of every shape map to the cause without crashing', async (t) => {
  const kme = await startMockKme(t);
  let cur: Case = cases[0];
  kme.handler = (_req, res) => {
    const body = typeof cur.body === 'string' ? Buffer.from(cur.body) : cur.body;
    const headers: Record<string, string | number> = { 'content-length': body.length };
    headers['content-type'] = cur.type ?? 'application/json';
    if (cur.status === 302) headers.location = 'https://evil.example/';
    res.writeHead(cur.status, headers);
    res.end(cur.status === 204 ? undefined : body);
  };
  const c = new Etsi014Client({ baseUrl: kme.url, ca: certs.ca, cert: certs.saeA.cert, key: certs.saeA.key, selfSaeId: 'SAE_A' });
  t.teardown(() => c.close());
  for (const cs of cases) {
    cur = cs;
    const call =
      cs.op === 'status'
        ? c.status('SAE_B')
        : cs.op === 'enc_keys'
          ? c.getKeys('SAE_B', { number: 1, sizeBits: 256 })
          : c.getKeysWithIds('SAE_M', ['k1'], { sizeBits: 256 });
    const e = await rejects(call);
    t.equal(e.code, cs.code, `${cs.name}: ${e.message}`);
    t.equal(isRetryableKmsError(e), cs.retryable, `${cs.name}: retryable=${cs.retryable}`);
    if (cs.status !== 200) {
      t.equal(e.details?.status, cs.status, `${cs.name}: details.status`);
      t.equal(e.details?.path, `/api/v1/keys/${cs.op === 'dec_keys' ? 'SAE_M' : 'SAE_B'}/${cs.op}`, `${cs.name}: details.path`);
      const km = String(e.details?.kmeMessage);
      t.ok(km.length <= 200, `${cs.name}: kmeMessage <= 200 chars`);
      if (typeof cs.kmeMessage === 'string') t.equal(km, cs.kmeMessage, `${cs.name}: kmeMessage`);
      else if (cs.kmeMessage) t.match(km, cs.kmeMessage, `${cs.name}: kmeMessage`);
    }
  }
  t.equal(kme.requests.length, cases.length, 'one request per case: the client never retries an HTTP answer');
});

t.test('classifyKmsError kinds', async (t) => {
  const mk = (code: (typeof ErrorCodes)[keyof typeof ErrorCodes]) => new QkdgwError(code, 'x');
  t.same(classifyKmsError(mk(ErrorCodes.KMS_TIMEOUT)), { kind: 'transient', retryable: true });
  t.same(classifyKmsError(mk(ErrorCodes.KMS_EXHAUSTED)), { kind: 'exhausted', retryable: true });
  t.same(classifyKmsError(mk(ErrorCodes.KMS_KEY_UNAVAILABLE)), { kind: 'key_unavailable', retryable: true });
  t.same(classifyKmsError(mk(ErrorCodes.KMS_AUTH)), { kind: 'auth', retryable: false });
  t.same(classifyKmsError(mk(ErrorCodes.KMS_TLS)), { kind: 'tls', retryable: false });
  t.same(classifyKmsError(mk(ErrorCodes.KMS_KEY_INVALID)), { kind: 'protocol', retryable: false });
  t.same(classifyKmsError(mk(ErrorCodes.KMS_KEY_REUSED)), { kind: 'reused', retryable: false });
  t.same(classifyKmsError(new Error('plain')), { kind: 'other', retryable: false });
});

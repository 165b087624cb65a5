/**
 * error-map: KME message extraction (C29), HTTP status table, transport error wording
 * (BC-04: the cause is named, never a bare ECONNRESET), retry classes.
 */
import t from 'tap';
import {
  extractKmeMessage,
  httpStatusError,
  transportError,
  classifyKmsError,
  HANDSHAKE_PHASE,
  PIN_MISMATCH_CODE,
} from '../../../src/kms/etsi014/error-map.js';
import { ErrorCodes } from '../../../src/errors.js';

t.test('etsi014-C29 extractKmeMessage never throws and keeps <= 200 chars', async (t) => {
  const cases: Array<[string | Buffer, string]> = [
    ['', ''],
    ['{"message":"insufficient key material"}', 'insufficient key material'],
    ['{"detail":"Not Found"}', 'Not Found'],
    ['{"message":"bad","details":[{"a":1}]}', 'bad (details: [{"a":1}])'],
    ['{"title":"Falcon"}', 'Falcon'],
    ['{"error":"nope"}', 'nope'],
    ['{"other":1}', '{"other":1}'],
    ['{not json', '{not json'],
    ['<html><title>T</title><body><h1>Head</h1></body></html>', 'Head'],
    ['<p>para <b>bold</b></p>', 'para bold'],
    ['line1\r\nline2\u0000', 'line1 line2'],
    ['[1,2]', '[1,2]'],
    ['null', 'null'],
  ];
  for (const [body, want] of cases) t.equal(extractKmeMessage(Buffer.from(body)), want, JSON.stringify(body));
  t.equal(extractKmeMessage(Buffer.from('y'.repeat(10_000))).length, 200);
  t.doesNotThrow(() => extractKmeMessage(Buffer.from([0xff, 0x00, 0xfe])));
});

t.test('etsi014-C29 HTTP status table', async (t) => {
  const rows: Array<[Parameters<typeof httpStatusError>[0], number, string, string]> = [
    ['status', 401, '', ErrorCodes.KMS_AUTH],
    ['enc_keys', 403, '', ErrorCodes.KMS_AUTH],
    ['dec_keys', 400, 'one or more keys specified are not found on KME', ErrorCodes.KMS_KEY_UNAVAILABLE],
    ['dec_keys', 404, '', ErrorCodes.KMS_KEY_UNAVAILABLE],
    ['dec_keys', 503, 'insufficient key material', ErrorCodes.KMS_EXHAUSTED],
    ['enc_keys', 400, 'no keys remaining', ErrorCodes.KMS_EXHAUSTED],
    ['enc_keys', 503, 'pool exhausted', ErrorCodes.KMS_EXHAUSTED],
    ['enc_keys', 503, 'Service Unavailable', ErrorCodes.KMS_UNAVAILABLE],
    ['enc_keys', 400, 'size shall be a multiple of 8', ErrorCodes.KMS_CONFIG],
    ['status', 400, 'size', ErrorCodes.KMS_REQUEST],
    ['enc_keys', 404, '', ErrorCodes.KMS_REQUEST],
    ['enc_keys', 405, '', ErrorCodes.KMS_REQUEST],
    ['enc_keys', 422, 'Validation error', ErrorCodes.KMS_REQUEST],
    ['enc_keys', 429, '', ErrorCodes.KMS_UNAVAILABLE],
    ['enc_keys', 500, '', ErrorCodes.KMS_UNAVAILABLE],
    ['enc_keys', 504, '', ErrorCodes.KMS_UNAVAILABLE],
    ['enc_keys', 301, '', ErrorCodes.KMS_PROTOCOL],
    ['enc_keys', 201, '', ErrorCodes.KMS_PROTOCOL],
  ];
  for (const [op, status, msg, code] of rows) {
    const e = httpStatusError(op, status, msg, '/p', { sizeBits: 256 });
    t.equal(e.code, code, `${op} ${status} ${msg}`);
    t.same({ status: e.details?.status, path: e.details?.path, kmeMessage: e.details?.kmeMessage }, { status, path: '/p', kmeMessage: msg });
  }
});

t.test('BC-04 transport errors are named, never a bare socket code', async (t) => {
  const ctx = { op: 'status' as const, path: '/api/v1/keys/B/status', expectedIdentity: 'kme.example', retried: false };
  const err = (code: string, extra: Record<string | symbol, unknown> = {}) => Object.assign(new Error(code), { code }, extra);
  const rows: Array<[Error, string, RegExp]> = [
    [err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), ErrorCodes.KMS_TLS, /does not chain to the configured CA/],
    [err('SELF_SIGNED_CERT_IN_CHAIN'), ErrorCodes.KMS_TLS, /configured CA/],
    [err('CERT_HAS_EXPIRED'), ErrorCodes.KMS_TLS, /not valid now/],
    [err('ERR_TLS_CERT_ALTNAME_INVALID', { reason: "Host: x. is not in the cert's altnames" }), ErrorCodes.KMS_TLS, /expected KME identity "kme\.example"/],
    [err(PIN_MISMATCH_CODE), ErrorCodes.KMS_TLS, /pin/],
    [err('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), ErrorCodes.KMS_TLS, /did not get one/],
    [err('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), ErrorCodes.KMS_TLS, /rejected our SAE client certificate/],
    [err('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), ErrorCodes.KMS_TLS, /rejected our SAE client certificate/],
    [err('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION'), ErrorCodes.KMS_TLS, /TLS >= 1\.2/],
    [err('ERR_SSL_WRONG_VERSION_NUMBER'), ErrorCodes.KMS_TLS, /does not speak TLS/],
    [err('ECONNRESET', { [HANDSHAKE_PHASE]: true }), ErrorCodes.KMS_TLS, /during the TLS handshake/],
    [err('ECONNREFUSED'), ErrorCodes.KMS_CONNECT, /cannot reach the KME \(ECONNREFUSED\)/],
    [err('ENOTFOUND'), ErrorCodes.KMS_CONNECT, /cannot reach/],
    [err('UND_ERR_SOCKET'), ErrorCodes.KMS_CONNECT, /closed the connection before answering status/],
    [err('UND_ERR_CONNECT_TIMEOUT'), ErrorCodes.KMS_TIMEOUT, /timed out/],
    [err('UND_ERR_HEADERS_TIMEOUT'), ErrorCodes.KMS_TIMEOUT, /did not answer in time/],
    [err('UND_ERR_RES_EXCEEDED_MAX_SIZE'), ErrorCodes.KMS_PROTOCOL, /size limit/],
    [err('HPE_INVALID_CONSTANT'), ErrorCodes.KMS_CONNECT, /status call failed: HPE_INVALID_CONSTANT/],
  ];
  for (const [e, code, re] of rows) {
    const q = transportError(e, ctx);
    t.equal(q.code, code, (e as unknown as { code: string }).code);
    t.match(q.message, re);
    t.equal(q.cause, e, 'cause kept for debugging');
    t.notMatch(q.message, /^(ECONNRESET|UND_ERR_SOCKET)$/);
  }
  t.match(transportError(err('ECONNRESET'), { ...ctx, midBody: true }).message, /while sending the status response/);
  t.match(transportError(err('ECONNRESET'), { ...ctx, retried: true }).message, /also on a retry over a new connection/);
  t.equal(transportError('weird', ctx).code, ErrorCodes.KMS_CONNECT);
  t.same(classifyKmsError(transportError(err('ECONNREFUSED'), ctx)), { kind: 'transient', retryable: true });
});

// Strict JSON for control frames (protocol.md s2): duplicates, __proto__ (BC-35), depth, UTF-8.
import t from 'tap';
import { parseStrictJson, DEFAULT_MAX_DEPTH } from '../../../src/tunnel/core/wire/strict-json.js';
import { WireError } from '../../../src/tunnel/core/wire/errors.js';
import { caught } from './helpers.js';

const enc = (s: string) => Buffer.from(s, 'utf8');

t.test('valid JSON texts parse like JSON.parse', async (t) => {
  const texts = [
    '{}', '[]', '0', '-1', '1.5', '-0.25e+3', '1E2', 'true', 'false', 'null', '""',
    ' \t\r\n{ "a" : [1, 2, {"b": null}], "c": "x" } \n',
    '"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\ud83d\\ude00"',
    '"é😀中"', '[[[[]]]]', '{"a":{"a":{"a":1}}}', '9007199254740991', '1e308',
    '{"__proto__x": 1, "constructor": 2, "toString": 3}',
  ];
  for (const s of texts) {
    t.same(parseStrictJson(enc(s)), JSON.parse(s), s);
    t.same(parseStrictJson(s), JSON.parse(s), `string input ${s}`);
  }
});

t.test('objects have a null prototype; __proto__ is an own member (BC-35 d)', async (t) => {
  const v = parseStrictJson(enc('{"__proto__": {"polluted": true}, "a": {"__proto__": 1}}')) as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(v), null);
  t.ok(Object.hasOwn(v, '__proto__'), 'own member');
  t.same(Object.keys(v), ['__proto__', 'a']);
  t.equal((v.a as Record<string, unknown>)['__proto__'], 1);
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
  t.equal(Object.getPrototypeOf(v.a), null);
});

t.test('rejects with WireError and the right reason', async (t) => {
  const rows: Array<[string, string | Uint8Array, string]> = [
    ['duplicate member', '{"a":1,"a":2}', 'json_duplicate'],
    ['duplicate after unescaping', '{"a":1,"\\u0061":2}', 'json_duplicate'],
    ['duplicate nested', '{"x":{"k":1,"k":1}}', 'json_duplicate'],
    ['duplicate __proto__', '{"__proto__":1,"__proto__":2}', 'json_duplicate'],
    ['empty', '', 'json_syntax'],
    ['only whitespace', '  ', 'json_syntax'],
    ['trailing comma object', '{"a":1,}', 'json_syntax'],
    ['trailing comma array', '[1,]', 'json_syntax'],
    ['trailing garbage', '{} x', 'json_syntax'],
    ['two values', '{}{}', 'json_syntax'],
    ['single quotes', "{'a':1}", 'json_syntax'],
    ['unquoted key', '{a:1}', 'json_syntax'],
    ['leading zero', '01', 'json_syntax'],
    ['leading plus', '+1', 'json_syntax'],
    ['bare minus', '-', 'json_syntax'],
    ['dot without digits', '1.', 'json_syntax'],
    ['exponent without digits', '1e', 'json_syntax'],
    ['hex number', '0x10', 'json_syntax'],
    ['NaN', 'NaN', 'json_syntax'],
    ['Infinity', 'Infinity', 'json_syntax'],
    ['overflow to infinity', '1e400', 'json_syntax'],
    ['raw control char in string', '"a\u0001b"', 'json_syntax'],
    ['raw newline in string', '"a\nb"', 'json_syntax'],
    ['bad escape', '"\\x41"', 'json_syntax'],
    ['short unicode escape', '"\\u12"', 'json_syntax'],
    ['lone high surrogate escape', '"\\ud800"', 'json_syntax'],
    ['lone low surrogate escape', '"\\udc00"', 'json_syntax'],
    ['high then non-low escape', '"\\ud800\\u0041"', 'json_syntax'],
    ['lone raw surrogate (string input)', '"\ud800"', 'json_syntax'],
    ['unterminated string', '"abc', 'json_syntax'],
    ['unterminated object', '{"a":1', 'json_syntax'],
    ['missing colon', '{"a" 1}', 'json_syntax'],
    ['comment', '{} // c', 'json_syntax'],
    ['BOM', Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), 'json_syntax'],
    ['non-JSON whitespace (NBSP)', enc('\u00a0{}'), 'json_syntax'],
    ['truncated literal', 'tru', 'json_syntax'],
    ['invalid UTF-8', Buffer.from([0x22, 0xff, 0x22]), 'json_utf8'],
    ['overlong UTF-8', Buffer.from([0x22, 0xc0, 0xaf, 0x22]), 'json_utf8'],
    ['UTF-8 encoded surrogate', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), 'json_utf8'],
    ['too deep', '['.repeat(DEFAULT_MAX_DEPTH + 1) + ']'.repeat(DEFAULT_MAX_DEPTH + 1), 'json_depth'],
  ];
  for (const [name, input, reason] of rows) {
    const e = caught(() => parseStrictJson(typeof input === 'string' ? input : input));
    t.ok(e instanceof WireError, `${name}: WireError`);
    t.equal((e as WireError).reason, reason, `${name}: ${reason}`);
    t.equal((e as WireError).alert, 'bad_message', `${name}: bad_message`);
  }
});

t.test('depth bound: exactly maxDepth passes, one more fails', async (t) => {
  const nest = (d: number) => '['.repeat(d) + ']'.repeat(d);
  t.doesNotThrow(() => parseStrictJson(nest(DEFAULT_MAX_DEPTH)));
  t.doesNotThrow(() => parseStrictJson(nest(3), { maxDepth: 3 }));
  t.equal((caught(() => parseStrictJson(nest(4), { maxDepth: 3 })) as WireError).reason, 'json_depth');
  t.equal((caught(() => parseStrictJson('{"a":{"b":{"c":{}}}}', { maxDepth: 3 })) as WireError).reason, 'json_depth');
  // A very deep input fails on the bound, not with a stack overflow.
  t.equal((caught(() => parseStrictJson(nest(100_000))) as WireError).reason, 'json_depth');
});

t.test('integersOnly rejects fractions, exponents and -0', async (t) => {
  for (const s of ['1.0', '1e0', '1E2', '-0', '0.5', '[2.0]']) {
    const e = caught(() => parseStrictJson(s, { integersOnly: true }));
    t.equal((e as WireError)?.reason, 'json_syntax', s);
  }
  t.same(parseStrictJson('[0, -1, 42, 9007199254740993]', { integersOnly: true }), [0, -1, 42, 9007199254740992], 'plain integers parse (range is the caller\'s check)');
});

/** Duration, size and host:port parsers (config-sketch.md conventions). */
import t from 'tap';
import { formatHostPort, MAX_DURATION_MS, parseDuration, parseHostPort, parseSize } from '../../../src/config/units.js';

t.test('durations need a unit and become whole milliseconds', async (t) => {
  const ok: Array<[string, number]> = [
    ['120s', 120_000],
    ['5m', 300_000],
    ['500ms', 500],
    ['2s', 2_000],
    ['1.5s', 1_500],
    ['0s', 0],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['24d', 24 * 86_400_000],
  ];
  for (const [text, want] of ok) t.same(parseDuration(text), { value: want }, text);
  const bad: Array<[string, string]> = [
    ['120', 'with a unit'],
    ['5 parsecs', 'with a unit'],
    ['5 s', 'with a unit'],
    ['5sec', 'with a unit'],
    ['1w', 'with a unit'],
    ['-5s', 'with a unit'],
    ['05s', 'with a unit'],
    ['1e3s', 'with a unit'],
    ['', 'with a unit'],
    ['0.5ms', 'whole number of milliseconds'],
    ['0.0001s', 'with a unit'],
    ['25d', 'longer than the maximum'],
  ];
  for (const [text, frag] of bad) {
    const r = parseDuration(text);
    t.equal(r.value, undefined, `${JSON.stringify(text)} refused`);
    t.ok(r.error?.includes(frag), `${JSON.stringify(text)}: ${r.error}`);
  }
  t.equal(MAX_DURATION_MS, 2 ** 31 - 1);
});

t.test('sizes use binary units and stay safe integers', async (t) => {
  const ok: Array<[string, number]> = [
    ['64GiB', 64 * 2 ** 30],
    ['512KiB', 512 * 1024],
    ['1B', 1],
    ['0B', 0],
    ['3MiB', 3 * 2 ** 20],
    ['2TiB', 2 * 2 ** 40],
    ['7PiB', 7 * 2 ** 50],
  ];
  for (const [text, want] of ok) t.same(parseSize(text), { value: want }, text);
  for (const text of ['64GB', '64', '64 GiB', '64gib', '1.5GiB', '-1KiB', '08MiB', '9PiB']) {
    const r = parseSize(text);
    t.equal(r.value, undefined, `${text} refused: ${r.error}`);
  }
  t.match(parseSize('9PiB').error, /larger than 2\^53-1/);
});

t.test('host:port', async (t) => {
  const ok: Array<[string, boolean, string, number]> = [
    ['127.0.0.1:7443', false, '127.0.0.1', 7443],
    ['gw-b.example:7443', false, 'gw-b.example', 7443],
    ['[::1]:7443', false, '::1', 7443],
    ['[fe80::1%eth0]:7443', false, 'fe80::1%eth0', 7443],
    ['0.0.0.0:0', true, '0.0.0.0', 0],
    ['[::]:65535', true, '::', 65535],
    ['localhost:1', false, 'localhost', 1],
  ];
  for (const [text, listen, host, port] of ok) t.same(parseHostPort(text, { listen }), { value: { host, port } }, text);
  const bad: Array<[string, boolean, string]> = [
    ['gw-b', false, 'expected host:port'],
    ['gw-b:', false, 'expected host:port'],
    [':7443', false, 'expected host:port'],
    ['::1:7443', false, 'expected host:port'],
    ['127.0.0.1:99999', false, 'out of range'],
    ['127.0.0.1:65536', true, 'out of range'],
    ['127.0.0.1:0', false, 'only accepted for a listen address'],
    ['127.0.0.1:07443', false, 'leading zero'],
    ['[::g]:1', false, 'expected host:port'],
    ['[1::2::3]:1', false, 'not a valid IPv6'],
    ['300.1.1.1:1', false, 'not a valid IPv4'],
    ['-bad.example:1', false, 'expected host:port'],
    ['a..b:1', false, 'not a valid host name'],
    ['0.0.0.0:7443', false, 'unspecified address'],
    ['[::]:7443', false, 'unspecified address'],
    ['[0:0::0]:7443', false, 'unspecified address'],
    ['http://x:1', false, 'expected host:port'],
  ];
  for (const [text, listen, frag] of bad) {
    const r = parseHostPort(text, { listen });
    t.equal(r.value, undefined, `${text} refused`);
    t.ok(r.error?.includes(frag), `${text}: ${r.error}`);
  }
  t.equal(formatHostPort({ host: '::1', port: 1 }), '[::1]:1');
  t.equal(formatHostPort({ host: 'a.example', port: 2 }), 'a.example:2');
});

/**
 * The HTTP server behind gateway B in the demo: small pages, a hashing upload sink, a
 * download of random bytes announced by SHA-256, and an echo for long streams.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';

export async function startTarget(): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/hello') {
      res.setHeader('content-type', 'text/plain');
      res.end(`hello ${url.searchParams.get('i') ?? ''} from behind gateway B\n`);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/upload') {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on('end', () => res.end(JSON.stringify({ bytes: n, sha256: h.digest('hex') })));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/download') {
      const size = Math.min(Number(url.searchParams.get('bytes') ?? 0), 256 * 2 ** 20);
      const body = randomBytes(size);
      res.setHeader('x-sha256', createHash('sha256').update(body).digest('hex'));
      res.setHeader('content-length', String(size));
      res.end(body);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/echo') {
      req.pipe(res);
      return;
    }
    res.statusCode = 404;
    res.end('not found\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

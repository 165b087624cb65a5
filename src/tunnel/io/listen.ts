/** Promise wrapper around server.listen that maps failures to a typed LISTEN error. */
import type { Server } from 'node:net';
import { ErrorCodes, QkdgwError } from '../../errors.js';

/** Listens on host:port; resolves with the bound port. Throws LISTEN (e.g. address in use). */
export async function listenOn(server: Server, host: string, port: number, what: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onErr = (e: Error) => reject(new QkdgwError(ErrorCodes.LISTEN, `${what} ${host}:${port}: ${e.message}`, undefined, { cause: e }));
    server.once('error', onErr);
    server.listen(port, host, () => {
      server.off('error', onErr);
      resolve();
    });
  });
  const a = server.address();
  return typeof a === 'object' && a ? a.port : port;
}

/** Closes a server, resolving once it stopped accepting (open connections are not waited for). */
export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

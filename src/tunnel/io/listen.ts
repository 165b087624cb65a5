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

/**
 * Stops a server accepting and resolves at once. Open connections are not waited for:
 * `server.close(cb)` calls back only after every accepted socket closed, so a half-open
 * client or a carrier in its goodbye would stall a gateway's stop() until the peer lets go.
 * Their owners (carriers, the runtime) end them. The listening socket is closed
 * synchronously, so the port is free when this resolves.
 */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  server.close();
}

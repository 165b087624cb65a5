/**
 * One long HTTP stream through the tunnel for the demo's scenarios: a chunked POST to
 * the target's `/echo`, fed with random chunks until told to finish, with the bytes sent
 * and the bytes echoed back each hashed by SHA-256. It never resets the connection on
 * its own: a stall (e.g. a gateway holding traffic while it has no epoch to seal under)
 * is just back-pressure, and the stream carries on when the tunnel does.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';

/** The verdict of one finished stream. */
export interface EchoResult {
  /** Bytes sent up and bytes received back. */
  sent: number;
  back: number;
  /** True when both counts and both SHA-256 digests are equal. */
  intact: boolean;
  sha256Sent: string;
  sha256Back: string;
  /** Wall time from start to the end of the echo, ms. */
  ms: number;
}

export class EchoStream {
  /** Bytes written so far / echoed back so far. */
  sent = 0;
  back = 0;
  /** Date.now() of the last echoed chunk (0: none yet). */
  lastBackAt = 0;
  readonly #sentHash = createHash('sha256');
  readonly #backHash = createHash('sha256');
  readonly #started = Date.now();
  #stop = false;
  #error: Error | null = null;
  readonly #done: Promise<void>;
  readonly #chunkBytes: number;
  readonly #everyMs: number;

  /**
   * Starts the stream to `127.0.0.1:port` `/echo` (the demo's HTTP target behind gw-b).
   * @param chunkBytes size of each random chunk, bytes (default 32 KiB)
   * @param everyMs pause between chunks, ms (default 20: about 1.6 MiB/s each way)
   */
  constructor(port: number, chunkBytes = 32 * 1024, everyMs = 20) {
    this.#chunkBytes = chunkBytes;
    this.#everyMs = everyMs;
    this.#done = new Promise<void>((resolve, reject) => {
      const fail = (e: Error): void => {
        this.#error ??= e;
        reject(e);
      };
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/echo', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.on('data', (c: Buffer) => {
          this.#backHash.update(c);
          this.back += c.length;
          this.lastBackAt = Date.now();
        });
        res.on('end', () => resolve());
        res.on('error', fail);
        res.on('aborted', () => fail(new Error('the echo response was aborted (connection reset)')));
      });
      req.on('error', fail);
      const pump = (): void => {
        if (this.#stop) {
          req.end();
          return;
        }
        const chunk = randomBytes(this.#chunkBytes);
        this.#sentHash.update(chunk);
        this.sent += chunk.length;
        if (req.write(chunk)) setTimeout(pump, this.#everyMs);
        else req.once('drain', () => setTimeout(pump, this.#everyMs));
      };
      pump();
    });
    // Observed by finish(); an early failure must not be an unhandled rejection meanwhile.
    this.#done.catch(() => undefined);
  }

  /** The error that ended the stream early, if any (a reset shows here at once). */
  get error(): Error | null {
    return this.#error;
  }

  /**
   * Stops sending, ends the request and waits for the whole echo, up to `timeoutMs`.
   * @throws Error when the stream failed (reset, socket error) or the echo did not end in time
   */
  async finish(timeoutMs = 20_000): Promise<EchoResult> {
    this.#stop = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#done,
        new Promise<never>((_r, reject) => {
          timer = setTimeout(() => reject(new Error(`the echo stream did not end within ${timeoutMs / 1000} s (sent ${this.sent} bytes, ${this.back} back)`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    const sha256Sent = this.#sentHash.digest('hex');
    const sha256Back = this.#backHash.digest('hex');
    return { sent: this.sent, back: this.back, intact: this.sent === this.back && sha256Sent === sha256Back, sha256Sent, sha256Back, ms: Date.now() - this.#started };
  }
}

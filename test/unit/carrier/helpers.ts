// A two-sided carrier test bench: epochs with random flow secrets, honest sessions and a forger.
import { randomBytes } from 'node:crypto';
import { CarrierSession, type CarrierCrypto, type CarrierSide, type RecvEpochLookup, type SendEpoch } from '../../../src/tunnel/core/carrier.js';
import { defaultCarrierCrypto } from '../../../src/tunnel/core/carrier.js';
import { encodeRecordHeader, type CarrierRecordType, type RecordHeader } from '../../../src/tunnel/core/wire/record.js';
import { nonce } from '../../../src/crypto/nonce.js';
import type { SuiteId } from '../../../src/crypto/suites.js';
import { aeadForSuite, NODE_BACKEND } from '../../../src/crypto/backend.js';
import { deriveFlowKeys } from '../../../src/kdf/flow.js';
import { SecretBytes } from '../../../src/util/secret.js';

export interface BenchEpoch {
  epoch: number;
  suite: SuiteId;
  /** F_d of the entry gateway's outbound direction (entry sends with it, exit receives with it). */
  entryOut: SecretBytes;
  exitOut: SecretBytes;
}

export class Bench {
  readonly epochs = new Map<number, BenchEpoch>();
  readonly flowId = randomBytes(16);
  readonly lookups: Array<{ side: CarrierSide; low: number; purpose: string }> = [];

  constructor(readonly suite: SuiteId = 1) {}

  add(epoch: number, suite: SuiteId = this.suite): BenchEpoch {
    const e = { epoch, suite, entryOut: SecretBytes.from(randomBytes(32)), exitOut: SecretBytes.from(randomBytes(32)) };
    this.epochs.set(epoch, e);
    return e;
  }
  drop(epoch: number): void {
    this.epochs.delete(epoch);
  }

  sendOf(side: CarrierSide, epoch: number): SendEpoch {
    const e = this.epochs.get(epoch)!;
    return { epoch, suite: e.suite, flowSecret: side === 'entry' ? e.entryOut : e.exitOut };
  }

  lookup(side: CarrierSide): RecvEpochLookup {
    return (low, purpose) => {
      this.lookups.push({ side, low, purpose });
      for (const e of this.epochs.values()) {
        if (e.epoch >>> 0 === low) return { epoch: e.epoch, suite: e.suite, flowSecret: side === 'entry' ? e.exitOut : e.entryOut };
      }
      return null;
    };
  }

  session(side: CarrierSide, crypto?: CarrierCrypto): CarrierSession {
    return new CarrierSession({ side, flowId: this.flowId, recvLookup: this.lookup(side), ...(crypto ? { crypto } : {}) });
  }

  /** Seals any record, valid or not, as `from` would (bypasses every sequence rule). */
  forge(from: CarrierSide, type: CarrierRecordType, epoch: number, counter: number, pt: Uint8Array): { header: RecordHeader; body: Buffer } {
    const e = this.epochs.get(epoch)!;
    const { key, iv } = deriveFlowKeys(from === 'entry' ? e.entryOut : e.exitOut, this.flowId, e.suite);
    const aead = aeadForSuite(e.suite, NODE_BACKEND)(key.expose());
    const header: RecordHeader = { type, epochLow32: epoch >>> 0, counter, ctLen: pt.length + 16 };
    const body = aead.seal(nonce(iv, counter), pt, encodeRecordHeader(header));
    aead.destroy();
    key.wipe();
    return { header, body: Buffer.from(body) };
  }
}

/** Splits a sealed record (header || ct || tag) for openRecord, re-decoding the header. */
export { decodeRecordHeader } from '../../../src/tunnel/core/wire/record.js';

/** CarrierCrypto that counts derivations and keeps every derived key to check wiping. */
export function countingCrypto(): CarrierCrypto & { derived: Array<{ suite: SuiteId; key: SecretBytes; iv: Buffer }> } {
  const derived: Array<{ suite: SuiteId; key: SecretBytes; iv: Buffer }> = [];
  return {
    derived,
    aeadFor: defaultCarrierCrypto.aeadFor,
    deriveFlowKeys(secret, flowId, suite) {
      const r = defaultCarrierCrypto.deriveFlowKeys(secret, flowId, suite);
      derived.push({ suite, ...r });
      return r;
    },
  };
}

/**
 * The cryptographic steps of one handshake (protocol.md s3), with no state machine and
 * no I/O: the initiator's INIT material, the responder's RESP, the initiator's check of
 * RESP and the responder's check of CONFIRM. Every intermediate secret is zeroized here.
 */
import { randomBytes } from 'node:crypto';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import { mlkemCheckEk, mlkemDecapsulate, mlkemEncapsulate, mlkemKeygen } from '../../crypto/mlkem.js';
import { x25519Generate, x25519Shared, type X25519Ephemeral } from '../../crypto/x25519.js';
import { deriveEpochSecrets, finishedTag, verifyFinishedTag, wipeEpochSecrets, type EpochSecrets } from '../../kdf/schedule.js';
import { transcriptHash, type TranscriptInput } from '../../kdf/transcript.js';
import type { SecretBytes } from '../../util/secret.js';
import { Spec } from './constants.js';

/** What the initiator keeps between INIT and RESP. wipe() on every end. */
export class InitiatorPending {
  readonly nI: Buffer;
  readonly x: X25519Ephemeral;
  readonly ek: Buffer;
  #dk: Buffer | null;
  constructor() {
    this.nI = randomBytes(Spec.NONCE_LEN);
    this.x = x25519Generate();
    const kp = mlkemKeygen();
    this.ek = kp.ek;
    this.#dk = kp.dk;
  }
  get dk(): Buffer {
    if (!this.#dk) throw new QkdgwError(ErrorCodes.INTERNAL, 'ML-KEM decapsulation key used after wipe');
    return this.#dk;
  }
  wipe(): void {
    this.#dk?.fill(0);
    this.#dk = null;
    // The X25519 private KeyObject cannot be wiped: dropping it is all we can do.
    (this.x as { privateKey: unknown }).privateKey = null;
  }
}

export interface HandshakeContext {
  suite: 1 | 2;
  epoch: number;
  mode: number;
  idI: string;
  idR: string;
  keyIds: string[];
  exporter: Uint8Array;
  /** chain_{e-1} (32 bytes) or null when unchained. Not wiped here. */
  salt: Uint8Array | null;
}

export interface Derived {
  th: Buffer;
  secrets: EpochSecrets;
}

function th(ctx: HandshakeContext, p: Pick<TranscriptInput, 'nI' | 'nR' | 'pkXI' | 'pkXR' | 'ekM' | 'ctM'>): Buffer {
  return transcriptHash({ suite: ctx.suite, epoch: ctx.epoch, mode: ctx.mode, idI: ctx.idI, idR: ctx.idR, keyIds: ctx.keyIds, exporter: ctx.exporter, ...p });
}

/**
 * Responder: checks INIT's public values, encapsulates, derives and makes tag_R.
 * `kQkd` is 32 bytes (32 zero bytes when degraded); it is not wiped here.
 * Throws MLKEM_BAD_KEY, X25519_LOW_ORDER or CRYPTO_LENGTH (all answer `bad_message`).
 */
export function respond(ctx: HandshakeContext, init: { N_I: Buffer; pkX_I: Buffer; ek_M: Buffer }, kQkd: Uint8Array): Derived & { nR: Buffer; pkXR: Buffer; ctM: Buffer; tagR: Buffer } {
  const x = x25519Generate();
  const ssX = x25519Shared(x.privateKey, init.pkX_I);
  let ssM: Buffer | null = null;
  try {
    const enc = mlkemEncapsulate(init.ek_M);
    ssM = enc.ss;
    const nR = randomBytes(Spec.NONCE_LEN);
    const t = th(ctx, { nI: init.N_I, nR, pkXI: init.pkX_I, pkXR: x.publicKey, ekM: init.ek_M, ctM: enc.ct });
    const secrets = deriveEpochSecrets({ suite: ctx.suite, salt: ctx.salt, ssM, ssX, kQkd, th: t });
    return { th: t, secrets, nR, pkXR: x.publicKey, ctM: enc.ct, tagR: finishedTag(secrets.finishedR, t) };
  } finally {
    ssX.fill(0);
    ssM?.fill(0);
  }
}

/** A throwaway key: X25519 with a low-order point is all zero for every (clamped) scalar. */
let probe: X25519Ephemeral | null = null;

/**
 * True when `pkX_I` and `ek_M` are well formed: lengths, not a low-order X25519 point
 * (RFC 7748 s6.1), the FIPS 203 modulus check. Checked before `dec_keys`, so a bad INIT
 * consumes no QKD key.
 */
export function initPublicValuesValid(init: { pkX_I: Buffer; ek_M: Buffer }): boolean {
  if (init.pkX_I.length !== 32 || !mlkemCheckEk(init.ek_M)) return false;
  probe ??= x25519Generate();
  try {
    x25519Shared(probe.privateKey, init.pkX_I).fill(0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Initiator: decapsulates RESP, derives, verifies tag_R in constant time. Returns the
 * epoch secrets and tag_I, or null when tag_R fails (secrets wiped). Wipes `pending`.
 * Throws MLKEM_BAD_CIPHERTEXT / X25519_LOW_ORDER on malformed RESP values.
 */
export function finishInitiator(
  ctx: HandshakeContext,
  pending: InitiatorPending,
  resp: { N_R: Buffer; pkX_R: Buffer; ct_M: Buffer; tag_R: Buffer },
  kQkd: SecretBytes,
): (Derived & { tagI: Buffer }) | null {
  let ssM: Buffer | null = null;
  let ssX: Buffer | null = null;
  try {
    ssM = mlkemDecapsulate(resp.ct_M, pending.dk);
    ssX = x25519Shared(pending.x.privateKey, resp.pkX_R);
    const t = th(ctx, { nI: pending.nI, nR: resp.N_R, pkXI: pending.x.publicKey, pkXR: resp.pkX_R, ekM: pending.ek, ctM: resp.ct_M });
    const secrets = deriveEpochSecrets({ suite: ctx.suite, salt: ctx.salt, ssM, ssX, kQkd: kQkd.expose(), th: t });
    if (!verifyFinishedTag(secrets.finishedR, t, resp.tag_R)) {
      wipeEpochSecrets(secrets);
      return null;
    }
    return { th: t, secrets, tagI: finishedTag(secrets.finishedI, t) };
  } finally {
    ssM?.fill(0);
    ssX?.fill(0);
    pending.wipe();
  }
}

/** Responder: constant-time check of CONFIRM's tag_I against the held epoch's finished_i. */
export function checkConfirm(finishedI: SecretBytes, thOfEpoch: Uint8Array, tagI: Uint8Array): boolean {
  return verifyFinishedTag(finishedI, thOfEpoch, tagI);
}

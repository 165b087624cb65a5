/** PKI generation for qkdgw: two roots (QKD network, gateway control) and their leaves. */
export {
  initPki,
  QKD_CA_NAME,
  CONTROL_CA_NAME,
  SAE_URI_PREFIX,
  GATEWAY_URI_PREFIX,
  type InitPkiOptions,
  type PkiLayout,
  type PkiFilePair,
} from './init.js';
export {
  issueCertificate,
  DEFAULT_VALIDITY_DAYS,
  type IssueCertificateOptions,
  type IssuedCertificate,
  type IssuerPem,
  type ExtKeyUsage,
} from './issue.js';
export { spkiSha256, generateRsaKeyPair, DEFAULT_RSA_BITS, type PemKeyPair } from './keys.js';
export { PKI_MODES } from './files.js';

/*
 * AES-256-GCM over the node binary's OpenSSL (suite 1 of protocol.md s3, records of s5).
 *
 * One context per key holds two EVP_CIPHER_CTX (seal and open) keyed once, so a record
 * costs an IV reset, not a key schedule. Tags are always 16 bytes. Outputs go into
 * caller-owned buffers: nothing is allocated per record. On a failed tag the output
 * region is wiped before returning (the BoringSSL EVP_AEAD convention), so no
 * unauthenticated plaintext is ever left for the caller.
 *
 * Nonces: single-record calls take the 12-byte nonce as given. Batch calls take a
 * 12-byte IV and a start counter and use nonce_i = IV XOR (0^4 || be64(counter + i)),
 * exactly protocol.md s5; the counter values are the caller's, never chosen here.
 */
#include <limits.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gcm.h"
#include "napi_util.h"

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
/* Far above protocol.md's 64 KiB records; keeps every length inside EVP's int. */
#define MAX_RECORD (1u << 30)
#define LAYOUT_STRIDE 5

typedef struct {
  EVP_CIPHER_CTX *seal;
  EVP_CIPHER_CTX *open;
} gcm_ctx;

/* Distinguishes our externals from any other N-API external handed back to us. */
static const napi_type_tag GCM_TAG = {0x716b6467772d6763ULL, 0x6d2d637478763031ULL};

static void gcm_release(gcm_ctx *c) {
  /* EVP_CIPHER_CTX_free cleanses the expanded key (OPENSSL_clear_free in the provider). */
  if (c->seal) EVP_CIPHER_CTX_free(c->seal);
  if (c->open) EVP_CIPHER_CTX_free(c->open);
  c->seal = NULL;
  c->open = NULL;
}

static void gcm_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  gcm_ctx *c = (gcm_ctx *)data;
  gcm_release(c);
  OPENSSL_cleanse(c, sizeof *c);
  free(c);
}

static EVP_CIPHER_CTX *keyed_ctx(const uint8_t *key, int enc) {
  EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
  if (!x) return NULL;
  if (EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, key, NULL, enc) != 1) {
    EVP_CIPHER_CTX_free(x);
    return NULL;
  }
  return x;
}

/* Unwraps argument `v` as a live context; throws and returns NULL otherwise. */
/* Unwraps `v` as one of our contexts (live or freed); throws and returns NULL otherwise. */
static gcm_ctx *unwrap_ctx(napi_env env, napi_value v) {
  napi_valuetype t;
  bool tagged = false;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, v, &GCM_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, "QKDGW_E_INTERNAL", "not a native AES-256-GCM context");
    return NULL;
  }
  return (gcm_ctx *)p;
}

/* Unwraps argument `v` as a live context; throws and returns NULL otherwise. */
static gcm_ctx *get_ctx(napi_env env, napi_value v) {
  gcm_ctx *c = unwrap_ctx(env, v);
  if (c && (!c->seal || !c->open)) {
    napi_throw_error(env, "QKDGW_E_INTERNAL", "AEAD used after destroy");
    return NULL;
  }
  return c;
}

/* Seals one record; returns 1 on success. `out` receives len + 16 bytes (ct || tag). */
static int seal_one(EVP_CIPHER_CTX *x, const uint8_t nonce[NONCE_LEN], const uint8_t *pt, size_t len,
                    const uint8_t *aad, size_t aad_len, uint8_t *out) {
  int n = 0;
  if (EVP_EncryptInit_ex(x, NULL, NULL, NULL, nonce) != 1) return 0;
  if (aad_len && EVP_EncryptUpdate(x, NULL, &n, aad, (int)aad_len) != 1) return 0;
  int body = 0;
  if (len && EVP_EncryptUpdate(x, out, &body, pt, (int)len) != 1) return 0;
  if (EVP_EncryptFinal_ex(x, out + body, &n) != 1) return 0;
  if ((size_t)(body + n) != len) return 0;
  return EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + len) == 1;
}

/*
 * Opens one record of `len` >= 16 bytes (ct || tag) into `out` (len - 16 bytes).
 * Returns 1 when the tag verifies; otherwise wipes `out` and returns 0.
 */
static int open_one(EVP_CIPHER_CTX *x, const uint8_t nonce[NONCE_LEN], const uint8_t *sealed, size_t len,
                    const uint8_t *aad, size_t aad_len, uint8_t *out) {
  size_t ct_len = len - TAG_LEN;
  uint8_t tag[TAG_LEN];
  int n = 0, body = 0, ok = 0;
  memcpy(tag, sealed + ct_len, TAG_LEN);
  if (EVP_DecryptInit_ex(x, NULL, NULL, NULL, nonce) != 1) goto done;
  if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1) goto done;
  if (aad_len && EVP_DecryptUpdate(x, NULL, &n, aad, (int)aad_len) != 1) goto done;
  if (ct_len && EVP_DecryptUpdate(x, out, &body, sealed, (int)ct_len) != 1) goto done;
  ok = EVP_DecryptFinal_ex(x, out + body, &n) == 1 && (size_t)(body + n) == ct_len;
done:
  if (!ok && ct_len) OPENSSL_cleanse(out, ct_len);
  return ok;
}

/* True when [a, a+alen) and [b, b+blen) overlap without starting at the same byte. */
static bool bad_alias(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  if (a == b || !alen || !blen) return false;
  return a < b + blen && b < a + alen;
}

static void nonce_for(uint8_t out[NONCE_LEN], const uint8_t iv[NONCE_LEN], uint64_t counter) {
  memcpy(out, iv, NONCE_LEN);
  for (int i = 0; i < 8; i++) out[NONCE_LEN - 1 - i] ^= (uint8_t)(counter >> (8 * i));
}

/* gcmNew(key: Uint8Array(32)) -> context */
static napi_value gcm_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1) THROW_TYPE(env, "gcmNew(key) takes 1 argument");
  qkdgw_bytes key;
  if (!qkdgw_get_bytes(env, argv[0], &key, "key")) return NULL;
  if (key.len != KEY_LEN) THROW_RANGE(env, "AES-256-GCM key must be 32 bytes");
  gcm_ctx *c = (gcm_ctx *)calloc(1, sizeof *c);
  if (!c) {
    napi_throw_error(env, "QKDGW_E_INTERNAL", "out of memory");
    return NULL;
  }
  c->seal = keyed_ctx(key.data, 1);
  c->open = keyed_ctx(key.data, 0);
  if (!c->seal || !c->open) {
    gcm_release(c);
    free(c);
    napi_throw_error(env, "QKDGW_E_INTERNAL", "EVP AES-256-GCM key setup failed");
    return NULL;
  }
  napi_value ext;
  napi_status st = napi_create_external(env, c, gcm_finalize, NULL, &ext);
  if (st != napi_ok) {
    gcm_release(c);
    free(c);
    qkdgw_throw_status(env, st, "napi_create_external");
    return NULL;
  }
  NAPI_CALL(env, napi_type_tag_object(env, ext, &GCM_TAG));
  return ext;
}

/* gcmFree(ctx): drops both EVP contexts now (idempotent); GC frees the rest. */
static napi_value gcm_free(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1) {
    napi_throw_type_error(env, "QKDGW_E_INTERNAL", "not a native AES-256-GCM context");
    return NULL;
  }
  gcm_ctx *c = unwrap_ctx(env, argv[0]);
  if (c) gcm_release(c);
  return NULL;
}

/*
 * One record, seal or open, under an explicit nonce or under IV XOR counter:
 *   gcmSeal(ctx, nonce(12), plaintext, aad, out)      -> plaintext.length + 16
 *   gcmOpen(ctx, nonce(12), sealed, aad, out)         -> sealed.length - 16, or -1
 *   gcmSealAt(ctx, iv(12), counter, plaintext, aad, out), gcmOpenAt(...): the same with the
 *   nonce computed here (protocol.md s5), so the data plane builds no nonce in JavaScript.
 * A failed open wipes the output region; a record shorter than 16 bytes never verifies.
 */
static napi_value gcm_one(napi_env env, napi_callback_info info, int seal, int at) {
  size_t want = at ? 6 : 5, argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != want) {
    THROW_TYPE(env, at ? "gcmSealAt/gcmOpenAt(ctx, iv, counter, input, aad, out) take 6 arguments"
                       : seal ? "gcmSeal(ctx, nonce, plaintext, aad, out) takes 5 arguments"
                              : "gcmOpen(ctx, nonce, sealed, aad, out) takes 5 arguments");
  }
  gcm_ctx *c = get_ctx(env, argv[0]);
  if (!c) return NULL;
  qkdgw_bytes n, in, aad, out;
  uint64_t counter = 0;
  napi_value *data = argv + (at ? 3 : 2);
  if (!qkdgw_get_bytes(env, argv[1], &n, at ? "iv" : "nonce") || (at && !qkdgw_get_safe_uint(env, argv[2], &counter, "counter")) ||
      !qkdgw_get_bytes(env, data[0], &in, at ? "input" : seal ? "plaintext" : "sealed") || !qkdgw_get_bytes(env, data[1], &aad, "aad") ||
      !qkdgw_get_bytes(env, data[2], &out, "out"))
    return NULL;
  if (n.len != NONCE_LEN) THROW_RANGE(env, at ? "AES-GCM IV must be 12 bytes" : "AES-GCM nonce must be 12 bytes");
  if (in.len > MAX_RECORD || aad.len > MAX_RECORD) THROW_RANGE(env, "record or AAD longer than 2^30 bytes");
  uint8_t nonce[NONCE_LEN];
  if (at) nonce_for(nonce, n.data, counter);
  else memcpy(nonce, n.data, NONCE_LEN);
  napi_value r;
  if (seal) {
    if (out.len < in.len + TAG_LEN) THROW_RANGE(env, "output buffer too small");
    if (bad_alias(in.data, in.len, out.data, in.len + TAG_LEN)) THROW_RANGE(env, "output overlaps the plaintext without starting at it");
    if (!seal_one(c->seal, nonce, in.data, in.len, aad.data, aad.len, out.data)) {
      napi_throw_error(env, "QKDGW_E_INTERNAL", "EVP AES-256-GCM seal failed");
      return NULL;
    }
    NAPI_CALL(env, napi_create_uint32(env, (uint32_t)(in.len + TAG_LEN), &r));
    return r;
  }
  if (in.len < TAG_LEN) {
    /* A truncated tag never verifies (Node 20's decipher would accept it without authTagLength). */
    NAPI_CALL(env, napi_create_int32(env, -1, &r));
    return r;
  }
  size_t ct_len = in.len - TAG_LEN;
  if (out.len < ct_len) THROW_RANGE(env, "output buffer too small");
  if (bad_alias(in.data, in.len, out.data, ct_len)) THROW_RANGE(env, "output overlaps the input without starting at it");
  int ok = open_one(c->open, nonce, in.data, in.len, aad.data, aad.len, out.data);
  NAPI_CALL(env, napi_create_int32(env, ok ? (int32_t)ct_len : -1, &r));
  return r;
}

static napi_value gcm_seal(napi_env env, napi_callback_info info) {
  return gcm_one(env, info, 1, 0);
}

static napi_value gcm_open(napi_env env, napi_callback_info info) {
  return gcm_one(env, info, 0, 0);
}

static napi_value gcm_seal_at(napi_env env, napi_callback_info info) {
  return gcm_one(env, info, 1, 1);
}

static napi_value gcm_open_at(napi_env env, napi_callback_info info) {
  return gcm_one(env, info, 0, 1);
}

/* Records per batch whose layout copy fits on the stack; larger batches take one malloc. */
#define BATCH_STACK_RECORDS 64
/* Far above any sensible batch; bounds the one allocation a huge layout could ask for. */
#define BATCH_MAX_RECORDS (1u << 20)

/*
 * A batch's arguments. `layout` and `iv` point at PRIVATE copies: the caller's arrays may
 * alias dst/status, or live in a SharedArrayBuffer another thread writes, and the bounds
 * checked must be the bounds used (time-of-check = time-of-use).
 */
typedef struct {
  gcm_ctx *c;
  qkdgw_bytes src, aad, dst;
  uint8_t iv[NONCE_LEN];
  uint64_t counter;
  uint32_t *layout;
  uint32_t stack[BATCH_STACK_RECORDS * LAYOUT_STRIDE];
  size_t n;
} batch_args;

static void batch_release(batch_args *b) {
  if (b->layout && b->layout != b->stack) free(b->layout);
  b->layout = NULL;
}

/*
 * Parses (ctx, iv, counter, src, aad, dst, layout) and checks every record's bounds
 * before any is processed, so a bad layout throws with nothing written.
 * `grow` is +16 for seal (dst gets len + 16) and -16 for open (dst gets len - 16).
 */
static int parse_batch(napi_env env, napi_value *argv, int grow, batch_args *b) {
  b->layout = NULL;
  b->c = get_ctx(env, argv[0]);
  if (!b->c) return 0;
  size_t words = 0;
  qkdgw_bytes iv;
  uint32_t *user_layout = NULL;
  if (!qkdgw_get_bytes(env, argv[1], &iv, "iv") || !qkdgw_get_safe_uint(env, argv[2], &b->counter, "counter") ||
      !qkdgw_get_bytes(env, argv[3], &b->src, "src") || !qkdgw_get_bytes(env, argv[4], &b->aad, "aad") ||
      !qkdgw_get_bytes(env, argv[5], &b->dst, "dst") || !qkdgw_get_u32s(env, argv[6], &user_layout, &words, "layout"))
    return 0;
  if (iv.len != NONCE_LEN) {
    napi_throw_range_error(env, "QKDGW_E_CRYPTO_LENGTH", "AES-GCM IV must be 12 bytes");
    return 0;
  }
  if (words % LAYOUT_STRIDE != 0) {
    napi_throw_range_error(env, "QKDGW_E_CRYPTO_LENGTH", "layout length must be a multiple of 5");
    return 0;
  }
  b->n = words / LAYOUT_STRIDE;
  if (b->n > BATCH_MAX_RECORDS) {
    napi_throw_range_error(env, "QKDGW_E_CRYPTO_LENGTH", "batch larger than 2^20 records");
    return 0;
  }
  memcpy(b->iv, iv.data, NONCE_LEN);
  b->layout = b->n <= BATCH_STACK_RECORDS ? b->stack : (uint32_t *)malloc(words * sizeof(uint32_t));
  if (!b->layout) {
    napi_throw_error(env, "QKDGW_E_INTERNAL", "out of memory");
    return 0;
  }
  if (words) memcpy(b->layout, user_layout, words * sizeof(uint32_t));
  const char *bad = NULL;
  if (b->n && b->counter + (b->n - 1) > 9007199254740991ULL) bad = "batch counters exceed 2^53 - 1";
  for (size_t i = 0; !bad && i < b->n; i++) {
    const uint32_t *r = b->layout + i * LAYOUT_STRIDE;
    uint64_t so = r[0], sl = r[1], ao = r[2], al = r[3], dof = r[4];
    if (sl > MAX_RECORD || al > MAX_RECORD || so + sl > b->src.len || ao + al > b->aad.len) {
      bad = "batch record outside src or aad";
      break;
    }
    if (grow < 0 && sl < TAG_LEN) continue; /* a short record simply fails to open */
    uint64_t dl = grow > 0 ? sl + TAG_LEN : sl - TAG_LEN;
    if (dof + dl > b->dst.len) bad = "batch record outside dst";
    else if (bad_alias(b->src.data + so, sl, b->dst.data + dof, dl)) bad = "batch output overlaps its input without starting at it";
  }
  if (bad) {
    batch_release(b);
    napi_throw_range_error(env, "QKDGW_E_CRYPTO_LENGTH", bad);
    return 0;
  }
  return 1;
}

/*
 * gcmSealBatch(ctx, iv(12), counter, src, aad, dst, layout) -> records sealed
 * layout: Uint32Array of 5 words per record: srcOff, len, aadOff, aadLen, dstOff.
 * Record i uses nonce IV XOR (counter + i) and writes len + 16 bytes at dstOff.
 */
static napi_value gcm_seal_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 7) THROW_TYPE(env, "gcmSealBatch(ctx, iv, counter, src, aad, dst, layout) takes 7 arguments");
  batch_args b;
  if (!parse_batch(env, argv, +1, &b)) return NULL;
  uint8_t nonce[NONCE_LEN];
  for (size_t i = 0; i < b.n; i++) {
    const uint32_t *r = b.layout + i * LAYOUT_STRIDE;
    nonce_for(nonce, b.iv, b.counter + i);
    if (!seal_one(b.c->seal, nonce, b.src.data + r[0], r[1], b.aad.data + r[2], r[3], b.dst.data + r[4])) {
      batch_release(&b);
      napi_throw_error(env, "QKDGW_E_INTERNAL", "EVP AES-256-GCM seal failed");
      return NULL;
    }
  }
  batch_release(&b);
  napi_value v;
  NAPI_CALL(env, napi_create_uint32(env, (uint32_t)b.n, &v));
  return v;
}

/*
 * gcmOpenBatch(ctx, iv(12), counter, src, aad, dst, layout, status) -> failed records
 * Same layout as gcmSealBatch with len = sealed length; record i writes len - 16 bytes at
 * dstOff when its tag verifies (status[i] = 1), else wipes that region (status[i] = 0).
 */
static napi_value gcm_open_batch(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 8) THROW_TYPE(env, "gcmOpenBatch(ctx, iv, counter, src, aad, dst, layout, status) takes 8 arguments");
  qkdgw_bytes status;
  if (!qkdgw_get_bytes(env, argv[7], &status, "status")) return NULL;
  batch_args b;
  if (!parse_batch(env, argv, -1, &b)) return NULL;
  if (status.len < b.n) {
    batch_release(&b);
    THROW_RANGE(env, "status must hold one byte per record");
  }
  uint8_t nonce[NONCE_LEN];
  uint32_t failed = 0;
  for (size_t i = 0; i < b.n; i++) {
    const uint32_t *r = b.layout + i * LAYOUT_STRIDE;
    int ok = 0;
    if (r[1] >= TAG_LEN) {
      nonce_for(nonce, b.iv, b.counter + i);
      ok = open_one(b.c->open, nonce, b.src.data + r[0], r[1], b.aad.data + r[2], r[3], b.dst.data + r[4]);
    }
    status.data[i] = (uint8_t)ok;
    failed += !ok;
  }
  batch_release(&b);
  napi_value v;
  NAPI_CALL(env, napi_create_uint32(env, failed, &v));
  return v;
}

int qkdgw_gcm_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"gcmNew", NULL, gcm_new, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gcmFree", NULL, gcm_free, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gcmSeal", NULL, gcm_seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gcmOpen", NULL, gcm_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gcmSealAt", NULL, gcm_seal_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gcmOpenAt", NULL, gcm_open_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gcmSealBatch", NULL, gcm_seal_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gcmOpenBatch", NULL, gcm_open_batch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}

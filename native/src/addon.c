/*
 * qkdgw native addon: module registration and argument helpers.
 *
 * The addon holds no policy: counters, nonces' IVs and buffer layouts come from the
 * TypeScript caller (src/crypto/native/), which owns the protocol.md s5 rules.
 * OpenSSL comes from the node binary itself (its headers ship with Node's), so no
 * second libcrypto is linked.
 */
#include <stdio.h>
#include <string.h>

#include "napi_util.h"
#include "gcm.h"
#include "sd_notify.h"

void qkdgw_throw_status(napi_env env, napi_status status, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  const napi_extended_error_info *info = NULL;
  const char *detail = "unknown N-API failure";
  if (napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message) detail = info->error_message;
  char msg[256];
  snprintf(msg, sizeof msg, "native addon: %s failed (status %d: %s)", what, (int)status, detail);
  napi_throw_error(env, "QKDGW_E_INTERNAL", msg);
}

int qkdgw_get_bytes(napi_env env, napi_value v, qkdgw_bytes *out, const char *name) {
  char msg[128];
  /* napi_get_typedarray_info itself refuses anything that is not a typed array. */
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    snprintf(msg, sizeof msg, "%s must be a Uint8Array", name);
    napi_throw_type_error(env, "QKDGW_E_CRYPTO_LENGTH", msg);
    return 0;
  }
  out->data = (uint8_t *)data;
  out->len = len;
  return 1;
}

int qkdgw_get_u32s(napi_env env, napi_value v, uint32_t **data, size_t *count, const char *name) {
  bool is_ta = false;
  char msg[128];
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, count, &p, NULL, NULL) != napi_ok || type != napi_uint32_array) {
    snprintf(msg, sizeof msg, "%s must be a Uint32Array", name);
    napi_throw_type_error(env, "QKDGW_E_CRYPTO_LENGTH", msg);
    return 0;
  }
  *data = (uint32_t *)p;
  return 1;
}

int qkdgw_get_safe_uint(napi_env env, napi_value v, uint64_t *out, const char *name) {
  double d = -1;
  char msg[128];
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d > 9007199254740991.0 || d != (double)(uint64_t)d) {
    snprintf(msg, sizeof msg, "%s must be a safe integer >= 0", name);
    napi_throw_range_error(env, "QKDGW_E_CRYPTO_LENGTH", msg);
    return 0;
  }
  *out = (uint64_t)d;
  return 1;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!qkdgw_gcm_register(env, exports)) return NULL;
  if (!qkdgw_sd_notify_register(env, exports)) return NULL;
  napi_value abi;
  NAPI_CALL(env, napi_create_uint32(env, QKDGW_NATIVE_ABI, &abi));
  NAPI_CALL(env, napi_set_named_property(env, exports, "abi", abi));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

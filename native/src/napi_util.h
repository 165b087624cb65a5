/*
 * Small helpers shared by the addon's C files. Every napi_status is checked: a failed
 * call throws a JS Error (when none is pending) and the binding returns NULL.
 */
#ifndef QKDGW_NAPI_UTIL_H
#define QKDGW_NAPI_UTIL_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* Evaluates a napi call; on failure throws (if nothing is pending) and returns NULL. */
#define NAPI_CALL(env, call)                                          \
  do {                                                                \
    napi_status status_ = (call);                                     \
    if (status_ != napi_ok) {                                         \
      qkdgw_throw_status((env), status_, #call);                      \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

/* Throws a RangeError/TypeError with a QKDGW_E_* code and returns NULL. */
#define THROW_TYPE(env, msg)                                          \
  do {                                                                \
    napi_throw_type_error((env), "QKDGW_E_CRYPTO_LENGTH", (msg));     \
    return NULL;                                                      \
  } while (0)
#define THROW_RANGE(env, msg)                                         \
  do {                                                                \
    napi_throw_range_error((env), "QKDGW_E_CRYPTO_LENGTH", (msg));    \
    return NULL;                                                      \
  } while (0)

void qkdgw_throw_status(napi_env env, napi_status status, const char *what);

/* A byte view of a Uint8Array/Buffer argument (data may be NULL when len == 0). */
typedef struct {
  uint8_t *data;
  size_t len;
} qkdgw_bytes;

/* Reads argument `v` as a Uint8Array (Buffer included); returns 0 and throws TypeError otherwise. */
int qkdgw_get_bytes(napi_env env, napi_value v, qkdgw_bytes *out, const char *name);

/* Reads argument `v` as a Uint32Array; returns 0 and throws TypeError otherwise. */
int qkdgw_get_u32s(napi_env env, napi_value v, uint32_t **data, size_t *count, const char *name);

/*
 * Reads `v` as a JS number holding an integer in [0, 2^53 - 1] (a safe integer);
 * returns 0 and throws RangeError otherwise.
 */
int qkdgw_get_safe_uint(napi_env env, napi_value v, uint64_t *out, const char *name);

#endif

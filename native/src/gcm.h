#ifndef QKDGW_GCM_H
#define QKDGW_GCM_H

#include <node_api.h>

/* Bumped whenever the JS-visible surface changes; the loader refuses a mismatch. */
#define QKDGW_NATIVE_ABI 3

/* Adds gcmNew, gcmFree, gcmSeal, gcmOpen, gcmSealBatch, gcmOpenBatch to `exports`. Returns 0 on failure (exception pending). */
int qkdgw_gcm_register(napi_env env, napi_value exports);

#endif

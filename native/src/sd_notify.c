/*
 * sdNotify(state): the sd_notify(3) datagram, without libsystemd.
 *
 * Same address rules as libsystemd: NOTIFY_SOCKET is an absolute filesystem path, or
 * starts with `@` for a Linux abstract socket (the `@` becomes the leading NUL byte and
 * the address length excludes any trailing NUL, BC-38). vsock addresses are refused.
 * A fresh non-blocking socket per call: notifications are rare (seconds apart), and no
 * descriptor is left for a child process or a forked helper to inherit.
 */
#define _GNU_SOURCE /* SOCK_CLOEXEC, SOCK_NONBLOCK, MSG_NOSIGNAL under -std=c11 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "napi_util.h"
#include "sd_notify.h"

#ifdef __linux__
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int qkdgw_sd_notify_send(const char *state, size_t len, int *err, const char **why) {
  const char *addr = getenv("NOTIFY_SOCKET");
  if (addr == NULL || addr[0] == '\0') return 0;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t n = strlen(addr);
  socklen_t salen;
  if (addr[0] == '/') {
    /* A path needs its terminating NUL inside sun_path. */
    if (n >= sizeof sa.sun_path) {
      *err = ENAMETOOLONG;
      *why = "NOTIFY_SOCKET path does not fit in sockaddr_un (107 bytes at most)";
      return -1;
    }
    memcpy(sa.sun_path, addr, n);
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  } else if (addr[0] == '@') {
    /* Abstract: sun_path[0] = NUL, then the name; no terminator is part of the address. */
    if (n < 2) {
      *err = EINVAL;
      *why = "NOTIFY_SOCKET abstract name is empty";
      return -1;
    }
    if (n > sizeof sa.sun_path) {
      *err = ENAMETOOLONG;
      *why = "NOTIFY_SOCKET abstract name does not fit in sockaddr_un (107 bytes after @ at most)";
      return -1;
    }
    memcpy(sa.sun_path + 1, addr + 1, n - 1);
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  } else {
    *err = EAFNOSUPPORT;
    *why = "NOTIFY_SOCKET must be an absolute path or @abstract-name (vsock is not supported)";
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *err = errno;
    *why = "socket(AF_UNIX, SOCK_DGRAM) failed";
    return -1;
  }
  ssize_t sent;
  /* MSG_DONTWAIT: a full receive queue gives EAGAIN, never a stalled event loop.
   * MSG_NOSIGNAL: a vanished receiver must not raise SIGPIPE in the daemon. */
  do {
    sent = sendto(fd, state, len, MSG_NOSIGNAL | MSG_DONTWAIT, (const struct sockaddr *)&sa, salen);
  } while (sent < 0 && errno == EINTR);
  int saved = errno;
  close(fd);
  if (sent < 0) {
    *err = saved;
    *why = "sendto(NOTIFY_SOCKET) failed";
    return -1;
  }
  if ((size_t)sent != len) {
    *err = EMSGSIZE;
    *why = "sendto(NOTIFY_SOCKET) sent a truncated datagram";
    return -1;
  }
  return 1;
}
#else
/* No service manager protocol off Linux: unset is a no-op, set is an error worth seeing. */
int qkdgw_sd_notify_send(const char *state, size_t len, int *err, const char **why) {
  (void)state;
  (void)len;
  const char *addr = getenv("NOTIFY_SOCKET");
  if (addr == NULL || addr[0] == '\0') return 0;
  *err = ENOSYS;
  *why = "sd_notify is only implemented on Linux";
  return -1;
}
#endif

/* Throws an Error with code QKDGW_E_SD_NOTIFY, `errno` set, naming NOTIFY_SOCKET. */
static void throw_notify_error(napi_env env, int err, const char *why) {
  char msg[512];
  const char *addr = getenv("NOTIFY_SOCKET");
  snprintf(msg, sizeof msg, "sd_notify: %s: %s (NOTIFY_SOCKET=%.200s)", why, strerror(err), addr ? addr : "");
  napi_value code, text, error, num;
  if (napi_create_string_utf8(env, "QKDGW_E_SD_NOTIFY", NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok ||
      napi_create_error(env, code, text, &error) != napi_ok) {
    napi_throw_error(env, "QKDGW_E_SD_NOTIFY", msg);
    return;
  }
  if (napi_create_int32(env, err, &num) == napi_ok) napi_set_named_property(env, error, "errno", num);
  napi_throw(env, error);
}

/*
 * sdNotify(state: string) -> boolean. `state` is the newline-separated assignment list
 * (e.g. "READY=1\nSTATUS=..."), 1..4096 bytes of UTF-8 without NUL. Returns false when
 * NOTIFY_SOCKET is unset, true once the datagram is queued; throws QKDGW_E_SD_NOTIFY
 * (unusable address, ECONNREFUSED, ENOENT, EAGAIN...) or a TypeError/RangeError for a
 * bad argument.
 */
static napi_value sd_notify_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype type = napi_undefined;
  if (argc >= 1) NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_string) {
    napi_throw_type_error(env, "QKDGW_E_SD_NOTIFY", "sdNotify: state must be a string");
    return NULL;
  }
  size_t len = 0;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], NULL, 0, &len));
  if (len == 0 || len > QKDGW_SD_NOTIFY_MAX) {
    napi_throw_range_error(env, "QKDGW_E_SD_NOTIFY", "sdNotify: state must be 1..4096 bytes of UTF-8");
    return NULL;
  }
  char buf[QKDGW_SD_NOTIFY_MAX + 1];
  size_t copied = 0;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], buf, sizeof buf, &copied));
  if (copied != len || memchr(buf, '\0', copied) != NULL) {
    napi_throw_type_error(env, "QKDGW_E_SD_NOTIFY", "sdNotify: state must not contain NUL");
    return NULL;
  }
  int err = 0;
  const char *why = "";
  int r = qkdgw_sd_notify_send(buf, copied, &err, &why);
  if (r < 0) {
    throw_notify_error(env, err, why);
    return NULL;
  }
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, r == 1, &out));
  return out;
}

int qkdgw_sd_notify_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sdNotify", NULL, sd_notify_js, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}

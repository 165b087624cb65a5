/*
 * sd_notify(3) for Node: one datagram to the AF_UNIX socket named by NOTIFY_SOCKET.
 *
 * Node has no AF_UNIX datagram socket (nodejs/node #31414), so the service manager
 * protocol (READY=1, RELOADING=1, STOPPING=1, STATUS=..., WATCHDOG=1) is sent from C.
 * The datagram leaves from this process, so systemd's NotifyAccess=main accepts it
 * (field report BC-38).
 */
#ifndef QKDGW_SD_NOTIFY_H
#define QKDGW_SD_NOTIFY_H

#include <node_api.h>
#include <stddef.h>

/* systemd reads at most this many bytes of one notification (NOTIFY_BUFFER_MAX = PIPE_BUF). */
#define QKDGW_SD_NOTIFY_MAX 4096

/*
 * Sends `len` bytes of `state` to $NOTIFY_SOCKET (an absolute path, or `@name` for an
 * abstract socket), without blocking and without SIGPIPE.
 * Returns 1 when sent, 0 when NOTIFY_SOCKET is unset or empty (nothing to do), -1 on
 * failure with *err set to an errno value and *why to a static description.
 */
int qkdgw_sd_notify_send(const char *state, size_t len, int *err, const char **why);

/* Adds sdNotify(state) to `exports`. Returns 0 on failure (exception pending). */
int qkdgw_sd_notify_register(napi_env env, napi_value exports);

#endif

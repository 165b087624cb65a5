#!/usr/bin/env python3
"""A stand-in for systemd's notification socket, for test/integration/systemd/sd-notify.test.ts.

Node cannot create an AF_UNIX datagram socket, so the test runs this receiver instead:

    notify-receiver.py [--hold] ADDR...

Each ADDR is a filesystem path or `@name` (Linux abstract namespace). After binding all of
them it prints {"bound": [...]}; then, for every datagram, one JSON line:

    {"sock": ADDR, "pid": N, "uid": N, "msg": "READY=1\\nSTATUS=...", "listen": [ports]|null}

`pid`/`uid` come from SCM_CREDENTIALS (SO_PASSCRED), i.e. the kernel's word for who sent
it, as systemd checks for NotifyAccess=main. For a datagram containing READY=1, `listen`
lists the TCP ports the sender had in LISTEN state at that moment (from /proc), so the
test can tell READY=1 came after the listeners were open. `--hold` binds and never reads
(a full receive queue, to show the sender never blocks). Exits when stdin closes.
"""
import json
import os
import select
import socket
import struct
import sys

MAX = 8192


def bind(addr):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
    return s


def listening_ports(pid):
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            if len(col) > 9 and col[3] == "0A" and col[9] in inodes:
                ports.add(int(col[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def main(argv):
    hold = "--hold" in argv
    addrs = [a for a in argv if a != "--hold"]
    socks = {bind(a): a for a in addrs}
    print(json.dumps({"bound": addrs}), flush=True)
    watch = [sys.stdin] + ([] if hold else list(socks))
    cred_size = struct.calcsize("3i")
    while True:
        ready, _, _ = select.select(watch, [], [])
        for r in ready:
            if r is sys.stdin:
                if not sys.stdin.buffer.read1(4096):
                    return 0
                continue
            data, anc, _, _ = r.recvmsg(MAX, socket.CMSG_SPACE(cred_size))
            pid = uid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid, uid, _gid = struct.unpack("3i", payload[:cred_size])
            msg = data.decode("utf-8", "replace")
            listen = listening_ports(pid) if pid and "READY=1" in msg.split("\n") else None
            print(json.dumps({"sock": socks[r], "pid": pid, "uid": uid, "msg": msg, "listen": listen}), flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Bench helper for HACK.RATEHIT ... WAIT (scripts/bench, quotas section).

Queues WAITERS blocked clients on KEYS keys (WAITERS/KEYS per key, each key full), then
reports the server's CPU time (INFO cpu) over one idle second with them queued, and the CPU
per admission when one refund per key admits them all, next to the CPU of one plain
HACK.RATEHIT (measured the same way: a pipelined batch). Raw sockets, no client library.
usage: quota_waiters.py PORT [WAITERS] [KEYS]
"""
import socket
import sys
import time

PORT = int(sys.argv[1])
WAITERS = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
KEYS = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
PER_KEY = WAITERS // KEYS
PERIOD = "3600000"


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT))
        self.buf = b""

    def send(self, *args):
        self.s.sendall(resp(*args))

    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def read(self):
        l = self.line()
        t, rest = l[:1], l[1:]
        if t in (b"+", b"-", b":"):
            return rest
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(65536)
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        if t == b"*":
            return [self.read() for _ in range(int(rest))]
        raise ValueError(l)

    def call(self, *args):
        self.send(*args)
        return self.read()


def cpu(c):
    info = c.call("INFO", "cpu").decode()
    f = dict(l.split(":", 1) for l in info.splitlines() if ":" in l)
    return float(f["used_cpu_sys"]) + float(f["used_cpu_user"])


def info(c, field):
    for l in c.call("INFO", "hacks").decode().splitlines():
        if l.startswith(field + ":"):
            return int(l.split(":")[1])
    return -1


c = Conn()
c.call("FLUSHALL")
for k in range(KEYS):
    c.send("HACK.RATEHIT", "w:%d" % k, PER_KEY, PERIOD, "COST", PER_KEY)
for k in range(KEYS):
    c.read()
clients = []
for i in range(WAITERS):
    w = Conn()
    w.send("HACK.RATEHIT", "w:%d" % (i % KEYS), PER_KEY, PERIOD, "WAIT", 600000)
    clients.append(w)
while info(c, "hacks_ratelimit_waiters_now") < WAITERS:
    time.sleep(0.05)
time.sleep(0.2)
t0 = cpu(c)
time.sleep(1.0)
idle = cpu(c) - t0
print("  %d waiters on %d keys queued: server CPU over 1 idle s: %.1f ms" % (WAITERS, KEYS, idle * 1000))

# Admission: one refund per key admits its waiters (PER_KEY each).
t0 = cpu(c)
for k in range(KEYS):
    c.send("HACK.RATEHIT", "w:%d" % k, PER_KEY, PERIOD, "COST", -PER_KEY)
for k in range(KEYS):
    c.read()
for w in clients:
    v = w.read()
    assert v[0] == b"1", v
admit = cpu(c) - t0
# The same connections, no longer waiting: the idle baseline of 10,000 open clients.
t0 = cpu(c)
time.sleep(1.0)
idle_open = cpu(c) - t0
print("  the same %d connections open, not waiting: server CPU over 1 idle s: %.1f ms"
      % (WAITERS, idle_open * 1000))
# One plain HACK.RATEHIT from each of those connections (one call per client, as admissions
# are), and the same number pipelined on one connection.
c.call("FLUSHALL")
t0 = cpu(c)
for i, w in enumerate(clients):
    w.send("HACK.RATEHIT", "p:%d" % i, PER_KEY, PERIOD)
for w in clients:
    w.read()
per_client = cpu(c) - t0
c.call("FLUSHALL")
t0 = cpu(c)
for i in range(WAITERS):
    c.send("HACK.RATEHIT", "p:%d" % i, PER_KEY, PERIOD)
for i in range(WAITERS):
    c.read()
plain = cpu(c) - t0
print("  CPU per admission (with %d refunds): %.2f us; per HACK.RATEHIT from its own client: %.2f us (%.2fx); pipelined on one: %.2f us"
      % (KEYS, admit / WAITERS * 1e6, per_client / WAITERS * 1e6,
         admit / per_client if per_client else 0, plain / WAITERS * 1e6))

#!/usr/bin/python3
"""fdload.py - more clients than a daemon's open file limit allows (tests/integration/52).

Usage: fdload.py policy|milter PORT N DAEMON_PID

Opens N connections to 127.0.0.1:PORT at once and holds them.  On each, a recipient check
with a name of its own (so that every check needs a DNS query while the house is full):
b@good-<i>.fault.test (usable: DUNNO / continue) or, every third, b@nx-<i>.fault.test
(nonexistent: 550 5.1.2).  Each connection ends up as one of:
  served   answered with the right verdict
  wrong    answered with anything else (a 451 because DNS had no descriptor, ...)
  refused  closed by the daemon before any answer (what a newcomer should get)
  silent   neither within 5 s (left hanging in the listen queue, or a check that never ends)
Then, with everything still held, the daemon's CPU use over one second (utime + stime from
/proc/PID/stat).  Then every connection is closed and a new client asks again until it is
served (at most 5 s): recover_ms is the time from the close to its answer.
Prints one line of key=value pairs; the first wrong answer, if any, on the next line.
"""
import os
import selectors
import socket
import struct
import sys
import time

mode, port, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
TICK = os.sysconf("SC_CLK_TCK")


def rcpt(i, tag=""):
    if i % 3 == 2:
        return "b@nx-%s%d.fault.test" % (tag, i), "reject"
    return "b@good-%s%d.fault.test" % (tag, i), "ok"


def milter_pkt(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def request(i, tag=""):
    addr, want = rcpt(i, tag)
    if mode == "policy":
        return (("request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@ok.fault.test\n"
                 "recipient=%s\n\n" % addr).encode(), want)
    return (milter_pkt(b"O", struct.pack(">III", 6, 0x1FF, 0))
            + milter_pkt(b"C", b"client.test\0" + b"4" + struct.pack(">H", 4000) + b"127.0.0.1\0")
            + milter_pkt(b"H", b"client.test\0")
            + milter_pkt(b"M", b"<a@ok.fault.test>\0")
            + milter_pkt(b"R", ("<%s>\0" % addr).encode()), want)


def judge(buf, want):
    """None: incomplete; else (ok, text)."""
    if mode == "policy":
        if b"\n\n" not in buf:
            return None
        rep = buf.split(b"\n\n", 1)[0].decode("latin-1")
        ok = rep.startswith("action=DUNNO") if want == "ok" else rep.startswith("action=550 5.1.2")
        return ok, rep
    pkts = []
    while len(buf) >= 4:
        ln = struct.unpack(">I", buf[:4])[0]
        if len(buf) < 4 + ln:
            break
        pkts.append(buf[4:4 + ln])
        buf = buf[4 + ln:]
    if len(pkts) < 5:  # OPTNEG, CONNECT, HELO, MAIL, RCPT
        return None
    codes = "".join(chr(p[0]) for p in pkts[:5])
    last = pkts[4][1:].rstrip(b"\0").decode("latin-1")
    if want == "ok":
        ok = codes == "Occcc"
    else:
        ok = codes == "Occcy" and last.startswith("550 5.1.2")
    return ok, codes + " " + last


def run(socks, reqs, timeout):
    """Send each request, collect the answers: dict index -> state, text."""
    sel = selectors.DefaultSelector()
    res, bufs = {}, {}
    for i, s in socks.items():
        try:
            s.sendall(reqs[i][0])
        except OSError:
            res[i] = ("refused", "")
            continue
        s.setblocking(False)
        bufs[i] = b""
        sel.register(s, selectors.EVENT_READ, i)
    end = time.monotonic() + timeout
    while bufs and time.monotonic() < end:
        for key, _ in sel.select(max(0.0, end - time.monotonic())):
            i = key.data
            try:
                d = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                res[i] = ("refused" if not bufs[i] else "wrong", bufs[i][:80])
            else:
                bufs[i] += d
                j = judge(bufs[i], reqs[i][1])
                if j is None:
                    continue
                res[i] = ("served" if j[0] else "wrong", j[1])
            sel.unregister(key.fileobj)
            del bufs[i]
    for i in bufs:
        res[i] = ("silent", bufs[i][:80])
    sel.close()
    return res


def cpu_ticks():
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) + int(v[12])


socks = {}
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    socks[i] = s
time.sleep(0.5)  # the daemon takes what it can and refuses the rest
res = run(socks, {i: request(i) for i in socks}, 5.0)
count = {k: 0 for k in ("served", "wrong", "refused", "silent")}
first_wrong = ""
for i in sorted(res):
    count[res[i][0]] += 1
    if res[i][0] == "wrong" and not first_wrong:
        first_wrong = "connection %d: %r" % (i, res[i][1])

t0, c0 = time.monotonic(), cpu_ticks()
time.sleep(1.0)
cpu = 100.0 * (cpu_ticks() - c0) / TICK / (time.monotonic() - t0)

for s in socks.values():
    s.close()
t0 = time.monotonic()
recover_ms = -1
k = 0
while time.monotonic() - t0 < 5.0:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        r = run({0: s}, {0: request(k, "again")}, 2.0)[0]
    except OSError:
        r = ("refused", "")
    s.close()
    if r[0] == "served":
        recover_ms = int((time.monotonic() - t0) * 1000)
        break
    k += 1
    time.sleep(0.02)

print("opened=%d served=%d wrong=%d refused=%d silent=%d cpu_pct=%d recover_ms=%d" % (
    len(socks), count["served"], count["wrong"], count["refused"], count["silent"], int(cpu),
    recover_ms))
if first_wrong:
    print("first_wrong=" + first_wrong)

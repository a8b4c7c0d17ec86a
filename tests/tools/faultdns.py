#!/usr/bin/python3
"""faultdns.py - a fault-injecting DNS responder for the integration tests (loopback only).

Serves the zone fault.test over UDP and TCP on one port.  What it does with a query is chosen
by the first label of the query name (case-insensitive):

  servfail refused notimp formerr   answer with that rcode
  timeout, timeout-<N>              never answer (a TCP connection stays open for other queries)
  garbage                           right ID and question, then random bytes as the answer
                                    section (with an ANCOUNT that cannot fit: always malformed)
  random                            random bytes (random length, random ID)
  wrongid                           a correct answer with another ID, then nothing
  short                             a correct answer cut off in the middle of its last record
  trunc                             UDP: TC=1 and no records; TCP: connection reset, no answer
  slow<MS>                          the "ok" answer after MS milliseconds (slow5000)
  mx<N>                             N (1..500) MX records to good-NNN.fault.test; TC=1 over UDP
                                    when it does not fit (512 bytes, or the EDNS size), full over TCP
  mx<N>-slow<MS>                    the same, each answer (UDP and TCP) sent after MS milliseconds
  cnameloop, cnameloop-b            CNAME to each other
  chain<N>                          N CNAME hops: chain<N> -> chain<N>-<N-1> -> ... -> chain<N>-1
                                    -> ok.fault.test
  ok                                MX 10 good.fault.test.
  good, good-<N>                    A and AAAA of a usable host (MX: no data)
  mxto-<LABEL>                      MX 10 <LABEL>.fault.test. (mxto-timeout, mxto-servfail, ...)
  mxlast<N>                         N (2..500) MX records, preferences 1..N: the first N-1 to names
                                    that do not exist (nx-<I>), only the last to a usable host
  mxdead<N>                         N (2..500) MX records, preferences 1..N: the first N-1 to hosts
                                    that never answer (timeout-<I>), only the last to a usable host
  referral                          no answer, NS records in the authority section, no SOA, AA
                                    clear: a referral from a server that does not recurse
  upward                            the same with the root's NS (an "upward referral")
  nosoa                             NOERROR, empty answer, nothing in authority, AA clear, RA set
                                    (a resolver that stripped the SOA: no proof of NODATA)
  nxnoflags                         NXDOMAIN with the SOA, but neither AA nor RA set
  wrongq                            the "ok" answer, but the question section names another name
  othername                         MX records for another name (no CNAME to it), and the SOA
  mxboth                            MX 10 timeout.fault.test., MX 20 nonexistent.fault.test.
  mxgood-and-timeout                MX 10 good.fault.test., MX 20 timeout.fault.test.
  a-<B>--aaaa-<B>                   a host whose A and AAAA lookups behave differently (as a
                                    broken or load-balanced set of servers can), each B one of:
                                    good (the address of good), nodata, nxdomain (with the
                                    SOA), servfail refused notimp formerr timeout garbage random
                                    wrongid short trunc, slow<MS> (good after MS ms).  AAAA
                                    follows the second B, every other type the first, where
                                    good gives no data (a-nxdomain--aaaa-timeout,
                                    mxto-a-nxdomain--aaaa-timeout)
  fault.test itself                 SOA, NS; anything else there: no data
  any other name under fault.test   NXDOMAIN with the SOA in the authority section
  the root's NS records (". NS")     answered with RA set, as a recursive resolver answers this
                                    priming query (mxsane asks it to see whether a server recurses)
  other names outside fault.test    REFUSED

The SOA has TTL 600 and MINIMUM 300 and is sent unclamped, so a negative answer may be cached
for min(600, 300) = 300 s (RFC 2308).  Records carry TTL 300.  Every query is logged to stderr.
It exits by itself after --lifetime seconds (default 600), and on SIGTERM/SIGINT.  Resource use
is bounded: at most 64 TCP connections, 256 pending delayed answers, 64 KiB per TCP message.

Usage: faultdns.py --port PORT [--addr 127.0.0.1] [--lifetime 600] [--seed N]
"""

import argparse
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time

from dnslib import AAAA, CNAME, EDNS0, MX, NS, QTYPE, RCODE, RR, SOA, A, DNSLabel, DNSRecord, TXT

ZONE = "fault.test"
TTL = 300
SOA_TTL = 600
SOA_MINIMUM = 300
MAX_TCP_CONN = 64
MAX_PENDING = 256
MAX_TCP_MSG = 65535
TCP_IDLE = 30.0
MAX_SLOW_MS = 60000
MAX_MX = 500
MAX_CHAIN = 50

rng = random.Random()
stop = threading.Event()
pending = threading.BoundedSemaphore(MAX_PENDING)
tcp_slots = threading.BoundedSemaphore(MAX_TCP_CONN)


def log(msg):
    sys.stderr.write("faultdns: %s\n" % msg)
    sys.stderr.flush()


def soa_rr():
    return RR(ZONE + ".", QTYPE.SOA, ttl=SOA_TTL,
              rdata=SOA("ns." + ZONE + ".", "hostmaster." + ZONE + ".",
                        (1, 3600, 900, 604800, SOA_MINIMUM)))


def good_addrs(label):
    """A and AAAA of a usable host; good-N gets its own addresses."""
    m = re.fullmatch(r"good-(\d+)", label)
    n = int(m.group(1)) % 250 if m else 0
    return "5.6.8.%d" % (n + 1), "2a00:1450:4001::%x" % (0x100 + n)


def fq(label):
    return "%s.%s." % (label, ZONE)


class Plan:
    """What to do with one query: action and, for answers, the records."""

    def __init__(self, action, rcode=RCODE.NOERROR, answer=(), authority=(), delay_ms=0,
                 aa=1, ra=0):
        self.action = action  # answer | drop | garbage | random | wrongid | short | trunc | wrongq
        self.rcode = rcode
        self.answer = list(answer)
        self.authority = list(authority)
        self.delay_ms = delay_ms
        self.aa = aa
        self.ra = ra


def mx_set(qname, qtype, targets):
    if qtype != QTYPE.MX:
        return Plan("answer", authority=[soa_rr()])
    return Plan("answer", answer=[RR(qname, QTYPE.MX, ttl=TTL, rdata=MX(t, p)) for p, t in targets])


def ok_answer(qname, qtype):
    return mx_set(qname, qtype, [(10, fq("good"))])


def some_answer(qname, qtype):
    """A record of the asked type, for behaviours that mangle an otherwise correct answer."""
    a4, a6 = good_addrs("good")
    if qtype == QTYPE.MX:
        return Plan("answer", answer=[RR(qname, QTYPE.MX, ttl=TTL, rdata=MX(fq("good"), 10))])
    if qtype == QTYPE.A:
        return Plan("answer", answer=[RR(qname, QTYPE.A, ttl=TTL, rdata=A(a4))])
    if qtype == QTYPE.AAAA:
        return Plan("answer", answer=[RR(qname, QTYPE.AAAA, ttl=TTL, rdata=AAAA(a6))])
    return Plan("answer", answer=[RR(qname, QTYPE.TXT, ttl=TTL, rdata=TXT("fault"))])


def cname(qname, target):
    return Plan("answer", answer=[RR(qname, QTYPE.CNAME, ttl=TTL, rdata=CNAME(target))])


FIXED_RCODES = {"servfail": RCODE.SERVFAIL, "refused": RCODE.REFUSED,
                "notimp": RCODE.NOTIMP, "formerr": RCODE.FORMERR}
MANGLED = ("garbage", "random", "wrongid", "short", "trunc", "wrongq")


def family_plan(behaviour, qname, qtype):
    """Plan for one behaviour of an a-<B>--aaaa-<B> host, or None if B is unknown."""
    if behaviour in FIXED_RCODES:
        return Plan("answer", rcode=FIXED_RCODES[behaviour])
    if behaviour == "timeout":
        return Plan("drop")
    if behaviour == "nodata":
        return Plan("answer", authority=[soa_rr()])
    if behaviour == "nxdomain":
        return Plan("answer", rcode=RCODE.NXDOMAIN, authority=[soa_rr()])
    if behaviour in MANGLED:
        p = some_answer(qname, qtype)
        p.action = behaviour
        return p
    m = re.fullmatch(r"slow(\d+)", behaviour)
    if behaviour == "good" or m:
        a4, a6 = good_addrs("good")
        if qtype == QTYPE.A:
            p = Plan("answer", answer=[RR(qname, QTYPE.A, ttl=TTL, rdata=A(a4))])
        elif qtype == QTYPE.AAAA:
            p = Plan("answer", answer=[RR(qname, QTYPE.AAAA, ttl=TTL, rdata=AAAA(a6))])
        else:
            p = Plan("answer", authority=[soa_rr()])
        if m:
            p.delay_ms = min(int(m.group(1)), MAX_SLOW_MS)
        return p
    return None


def plan_for(qname, qtype):
    """Returns (behaviour name, Plan)."""
    name = qname.rstrip(".").lower()
    if name == "" and qtype == QTYPE.NS:
        return "root", Plan("answer", aa=0, ra=1, answer=[
            RR(".", QTYPE.NS, ttl=518400, rdata=NS("a.root-servers.net."))])
    if name != ZONE and not name.endswith("." + ZONE):
        return "outside", Plan("answer", rcode=RCODE.REFUSED)
    if name == ZONE:
        if qtype == QTYPE.SOA:
            return "apex", Plan("answer", answer=[soa_rr()])
        if qtype == QTYPE.NS:
            return "apex", Plan("answer", answer=[RR(qname, QTYPE.NS, ttl=TTL, rdata=NS(fq("ns")))])
        return "apex", Plan("answer", authority=[soa_rr()])
    label = name.split(".")[0]
    if label in FIXED_RCODES:
        return label, Plan("answer", rcode=FIXED_RCODES[label])
    if label == "timeout" or re.fullmatch(r"timeout-\d+", label):
        return label, Plan("drop")
    if label == "referral":
        return label, Plan("answer", aa=0, authority=[
            RR(ZONE + ".", QTYPE.NS, ttl=TTL, rdata=NS("ns1.elsewhere.test.")),
            RR(ZONE + ".", QTYPE.NS, ttl=TTL, rdata=NS("ns2.elsewhere.test."))])
    if label == "upward":
        return label, Plan("answer", aa=0, authority=[
            RR(".", QTYPE.NS, ttl=TTL, rdata=NS("a.root-servers.net."))])
    if label == "nosoa":
        return label, Plan("answer", aa=0, ra=1)
    if label == "nxnoflags":
        return label, Plan("answer", rcode=RCODE.NXDOMAIN, aa=0, authority=[soa_rr()])
    if label == "othername":
        return label, Plan("answer", authority=[soa_rr()], answer=[
            RR(fq("someone-else"), QTYPE.MX, ttl=TTL, rdata=MX(fq("good"), 10))])
    m = re.fullmatch(r"mxdead(\d+)", label)
    if m and 2 <= int(m.group(1)) <= MAX_MX:
        n = int(m.group(1))
        return label, mx_set(qname, qtype, [(i, fq("timeout-%d" % i)) for i in range(1, n)] +
                             [(n, fq("good-%03d" % n))])
    m = re.fullmatch(r"mxlast(\d+)", label)
    if m and 2 <= int(m.group(1)) <= MAX_MX:
        n = int(m.group(1))
        return label, mx_set(qname, qtype, [(i, fq("nx-%d" % i)) for i in range(1, n)] +
                             [(n, fq("good-%03d" % n))])
    if label in MANGLED:
        p = some_answer(qname, qtype)
        p.action = label
        return label, p
    m = re.fullmatch(r"slow(\d+)", label)
    if m:
        p = ok_answer(qname, qtype)
        p.delay_ms = min(int(m.group(1)), MAX_SLOW_MS)
        return label, p
    m = re.fullmatch(r"mx(\d+)(?:-slow(\d+))?", label)
    if m and 1 <= int(m.group(1)) <= MAX_MX:
        n = int(m.group(1))
        p = mx_set(qname, qtype, [(i, fq("good-%03d" % i)) for i in range(n)])
        p.delay_ms = min(int(m.group(2) or 0), MAX_SLOW_MS)
        return label, p
    if label == "cnameloop":
        return label, cname(qname, fq("cnameloop-b"))
    if label == "cnameloop-b":
        return label, cname(qname, fq("cnameloop"))
    m = re.fullmatch(r"chain(\d+)(?:-(\d+))?", label)
    if m and 1 <= int(m.group(1)) <= MAX_CHAIN:
        n = int(m.group(1))
        k = int(m.group(2)) if m.group(2) is not None else n
        if 1 <= k <= n:
            target = fq("chain%d-%d" % (n, k - 1)) if k > 1 else fq("ok")
            return "chain", cname(qname, target)
    if label == "ok":
        return label, ok_answer(qname, qtype)
    if label == "ns" and qtype == QTYPE.A:
        return label, Plan("answer", answer=[RR(qname, QTYPE.A, ttl=TTL, rdata=A("127.0.0.1"))])
    if label == "good" or re.fullmatch(r"good-\d+", label):
        a4, a6 = good_addrs(label)
        if qtype == QTYPE.A:
            return "good", Plan("answer", answer=[RR(qname, QTYPE.A, ttl=TTL, rdata=A(a4))])
        if qtype == QTYPE.AAAA:
            return "good", Plan("answer", answer=[RR(qname, QTYPE.AAAA, ttl=TTL, rdata=AAAA(a6))])
        return "good", Plan("answer", authority=[soa_rr()])
    m = re.fullmatch(r"a-([a-z]+|slow\d+)--aaaa-([a-z]+|slow\d+)", label)
    if m:
        a, aaaa = (family_plan(b, qname, qtype) for b in m.groups())
        if a is not None and aaaa is not None:
            return "a-%s--aaaa-%s" % m.groups(), aaaa if qtype == QTYPE.AAAA else a
    m = re.fullmatch(r"mxto-([a-z0-9-]+)", label)
    if m:
        return label, mx_set(qname, qtype, [(10, fq(m.group(1)))])
    if label == "mxboth":
        return label, mx_set(qname, qtype, [(10, fq("timeout")), (20, fq("nonexistent"))])
    if label == "mxgood-and-timeout":
        return label, mx_set(qname, qtype, [(10, fq("good")), (20, fq("timeout"))])
    return "nxdomain", Plan("answer", rcode=RCODE.NXDOMAIN, authority=[soa_rr()])


def question_len(data):
    """Length of the (first) question section of a raw message, or None."""
    off = 12
    while off < len(data):
        n = data[off]
        if n == 0:
            off += 1
            return off + 4 - 12 if off + 4 <= len(data) else None
        if n & 0xC0:
            return None
        off += 1 + n
    return None


def build(query, raw, plan, limit):
    """Bytes to send for a plan, or None for no answer.  limit: max size (UDP) or None (TCP)."""
    qid = query.header.id
    if plan.action == "drop":
        return None
    if plan.action == "random":
        return os.urandom(rng.randint(1, 300))
    if plan.action == "garbage":
        ql = question_len(raw) or 0
        flags = 0x8400 | (0x0100 if query.header.rd else 0)
        # ANCOUNT >= 100 with at most 200 bytes behind the question: whatever the random bytes
        # are, the message cannot parse (100 records need at least 1100 bytes).
        return (struct.pack("!HHHHHH", qid, flags, 1 if ql else 0, rng.randint(100, 65535), 0, 0)
                + raw[12:12 + ql] + os.urandom(rng.randint(20, 200)))
    reply = query.reply(ra=plan.ra, aa=plan.aa)
    reply.header.ad = 0  # reply() copies the query's flags; an authoritative answer has no AD
    reply.header.rcode = plan.rcode
    if plan.action == "wrongq":
        reply.q.qname = DNSLabel(fq("other"))
    for rr in plan.answer:
        reply.add_answer(rr)
    for rr in plan.authority:
        reply.add_auth(rr)
    edns = any(rr.rtype == QTYPE.OPT for rr in query.ar)
    if edns:
        reply.add_ar(EDNS0(udp_len=1232))
    if plan.action == "trunc" and limit is not None:
        reply.rr = []
        reply.auth = []
        reply.header.tc = 1
    data = reply.pack()
    if limit is not None and len(data) > limit:
        reply.rr = []
        reply.auth = []
        reply.header.tc = 1
        data = reply.pack()
    if plan.action == "wrongid":
        data = struct.pack("!H", qid ^ 0x5A5A) + data[2:]
    elif plan.action == "short":
        data = data[:-3] if not edns else data[:-(11 + 3)]  # cut inside the last answer record
    return data


def handle(raw, proto, peer):
    """Parse a query and decide.  Returns (query, plan) or (None, None) to ignore it."""
    try:
        query = DNSRecord.parse(raw)
    except Exception as e:  # dnslib raises several types on bad input
        log("%s %s unparseable query (%s): ignored" % (proto, peer, e))
        return None, None
    if query.header.qr or len(query.questions) != 1 or query.header.opcode != 0:
        plan = Plan("answer", rcode=RCODE.NOTIMP if query.header.opcode else RCODE.FORMERR)
        log("%s %s id=%d odd query: rcode %s" % (proto, peer, query.header.id, RCODE[plan.rcode]))
        return query, plan
    q = query.q
    behaviour, plan = plan_for(str(q.qname), q.qtype)
    what = plan.action if plan.action != "answer" else RCODE[plan.rcode]
    if plan.delay_ms:
        what += " after %d ms" % plan.delay_ms
    log("%s %s id=%d %s %s -> %s (%s)" % (proto, peer, query.header.id, QTYPE.get(q.qtype, q.qtype),
                                          q.qname, behaviour, what))
    return query, plan


def later(delay_ms, fn):
    """Run fn after delay_ms in a timer thread; drops the answer when too many are pending."""
    if not pending.acquire(blocking=False):
        log("too many delayed answers pending: dropping one")
        return

    def run():
        try:
            if not stop.is_set():
                fn()
        finally:
            pending.release()

    t = threading.Timer(delay_ms / 1000.0, run)
    t.daemon = True
    t.start()


def serve_udp(sock):
    while not stop.is_set():
        try:
            raw, peer = sock.recvfrom(65535)
        except socket.timeout:
            continue
        except OSError as e:
            log("udp recv: %s" % e)
            continue
        query, plan = handle(raw, "udp", "%s:%d" % peer[:2])
        if query is None:
            continue
        limit = 512
        for rr in query.ar:
            if rr.rtype == QTYPE.OPT:
                limit = max(512, min(rr.rclass, 4096))
        data = build(query, raw, plan, limit)
        if data is None:
            continue

        def send(d=data, p=peer):
            try:
                sock.sendto(d, p)
            except OSError as e:
                log("udp send: %s" % e)

        if plan.delay_ms:
            later(plan.delay_ms, send)
        else:
            send()


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve_tcp_conn(conn, peer):
    lock = threading.Lock()
    closed = threading.Event()
    name = "%s:%d" % peer[:2]
    try:
        conn.settimeout(TCP_IDLE)
        while not stop.is_set():
            hdr = recv_exact(conn, 2)
            if hdr is None:
                break
            (n,) = struct.unpack("!H", hdr)
            if n == 0 or n > MAX_TCP_MSG:
                break
            raw = recv_exact(conn, n)
            if raw is None:
                break
            query, plan = handle(raw, "tcp", name)
            if query is None:
                continue
            if plan.action == "trunc":
                # reset: close with SO_LINGER 0 so the peer gets RST, not an answer
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                break
            data = build(query, raw, plan, None)
            if data is None:
                continue

            def send(d=data):
                with lock:
                    if closed.is_set():
                        return
                    try:
                        conn.sendall(struct.pack("!H", len(d)) + d)
                    except OSError as e:
                        log("tcp send to %s: %s" % (name, e))

            if plan.delay_ms:
                later(plan.delay_ms, send)
            else:
                send()
    except (OSError, socket.timeout) as e:
        log("tcp %s: %s" % (name, e))
    finally:
        with lock:
            closed.set()
            conn.close()
        tcp_slots.release()


def serve_tcp(lsock):
    while not stop.is_set():
        try:
            conn, peer = lsock.accept()
        except socket.timeout:
            continue
        except OSError as e:
            log("tcp accept: %s" % e)
            time.sleep(0.1)
            continue
        if not tcp_slots.acquire(blocking=False):
            log("too many TCP connections: closing one from %s:%d" % peer[:2])
            conn.close()
            continue
        threading.Thread(target=serve_tcp_conn, args=(conn, peer), daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description="fault-injecting DNS responder for zone fault.test")
    ap.add_argument("--addr", default="127.0.0.1", help="address to listen on (loopback)")
    ap.add_argument("--port", type=int, required=True, help="UDP and TCP port")
    ap.add_argument("--lifetime", type=float, default=600, help="exit after this many seconds")
    ap.add_argument("--seed", type=int, default=None, help="seed for garbage bytes")
    args = ap.parse_args()
    rng.seed(args.seed)

    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    try:
        usock = socket.socket(fam, socket.SOCK_DGRAM)
        usock.bind((args.addr, args.port))
        tsock = socket.socket(fam, socket.SOCK_STREAM)
        tsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tsock.bind((args.addr, args.port))
        tsock.listen(64)
    except OSError as e:
        log("cannot listen on %s port %d: %s" % (args.addr, args.port, e))
        sys.exit(2)
    usock.settimeout(0.5)
    tsock.settimeout(0.5)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=serve_udp, args=(usock,), daemon=True).start()
    threading.Thread(target=serve_tcp, args=(tsock,), daemon=True).start()
    log("listening on %s port %d (udp, tcp), pid %d, lifetime %g s"
        % (args.addr, args.port, os.getpid(), args.lifetime))
    stop.wait(args.lifetime)
    log("stopping (%s)" % ("signal" if stop.is_set() else "lifetime over"))
    stop.set()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

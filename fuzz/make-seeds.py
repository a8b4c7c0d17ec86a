#!/usr/bin/python3
"""Capture real DNS replies from a running test server into fuzz/corpus/dnsmsg.

usage: make-seeds.py PORT NAME:TYPE...   (TYPE one of MX A AAAA)
Each file is: type selector byte, name length, name, raw reply (see fuzz_dnsmsg.c)."""
import hashlib, os, random, socket, struct, sys

SEL = {"MX": 0, "A": 1, "AAAA": 2}
QT = {"MX": 15, "A": 1, "AAAA": 28}

def query(port, name, qtype, tcp=False):
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", QT[qtype], 1)
    if tcp:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(struct.pack(">H", len(q)) + q)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
            chunk = s.recv(65535)
            if not chunk:
                break
            buf += chunk
        s.close()
        return buf[2:]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, ("127.0.0.1", port))
    r, _ = s.recvfrom(65535)
    s.close()
    if r[2] & 0x02:  # truncated: ask over TCP like c-ares does
        return query(port, name, qtype, tcp=True)
    return r

def main():
    port = int(sys.argv[1])
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "dnsmsg")
    os.makedirs(out, exist_ok=True)
    for spec in sys.argv[2:]:
        name, qtype = spec.rsplit(":", 1)
        reply = query(port, name, qtype)
        data = bytes([SEL[qtype], len(name)]) + name.encode() + reply
        fn = os.path.join(out, "seed-" + hashlib.sha1(data).hexdigest()[:16])
        with open(fn, "wb") as f:
            f.write(data)

main()

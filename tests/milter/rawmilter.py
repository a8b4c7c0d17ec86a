#!/usr/bin/env python3
"""rawmilter.py - a milter client speaking the wire protocol itself, for what miltertest
cannot send: macro packets (SMFIC_MACRO) that no MTA sends.  Used by
tests/integration/63-milter-macro-packets.sh; docs/robustness.md uses it as the reproducer
of the libmilter over-read.

usage: rawmilter.py SOCKET FORM STAGE COUNT
  SOCKET  unix:/path or inet:PORT@HOST (libmilter syntax)
  FORM    normal | odd | novalue | unterminated
          odd:          three strings, "j" "mx.test" "{daemon_name}": a name without value
          novalue:      one string, "{client_addr}"
          unterminated: "{client_addr}" then "192.0.2.1" without its closing NUL
  STAGE   C (the CONNECT macros) or M (the MAIL macros): where the malformed packet goes
  COUNT   sessions, one after the other

Each session: option negotiation offering everything (the milter picks), the malformed
macro packet (FORM normal: none), CONNECT unless declined, HELO, the MAIL macros Postfix
sends, MAIL, RCPT, QUIT.  Prints one line per session: "answered MAILREPLY RCPTREPLY", or
"dropped AT" when the connection closed or failed before the RCPT reply (AT: the step).
"""
import socket
import struct
import sys

SMFIF_ALL = 0x1FF  # every action, SETSYMLIST included
SMFIP_ALL = 0x1FFFFF  # every protocol step and "no reply" bit the milter may choose
SMFIP_NOCONNECT, SMFIP_NR_CONN, SMFIP_NR_HELO = 0x1, 0x1000, 0x2000

BAD = {
    "odd": b"j\0mx.test\0{daemon_name}\0",
    "novalue": b"{client_addr}\0",
    "unterminated": b"{client_addr}\0192.0.2.1",
}
GOOD_MAIL = b"".join(
    s + b"\0"
    for s in (b"i", b"4AB3C2", b"{client_addr}", b"192.0.2.10", b"{client_name}",
              b"client.test", b"{client_port}", b"4242", b"{daemon_port}", b"25"))


class Dropped(Exception):
    pass


def connect(spec):
    kind, _, rest = spec.partition(":")
    if kind in ("unix", "local"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(rest)
    else:
        port, _, host = rest.partition("@")
        s = socket.create_connection((host or "127.0.0.1", int(port)))
    s.settimeout(30)
    return s


def send(s, cmd, data=b""):
    s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise Dropped()
        buf += d
    return buf


def reply(s):
    """The next reply, skipping progress packets; "continue", "reject", "tempfail",
    "replycode:TEXT", "accept" or "other:C"."""
    while True:
        n = struct.unpack(">I", recv_exact(s, 4))[0]
        pkt = recv_exact(s, n)
        c, data = pkt[:1], pkt[1:]
        if c == b"p":
            continue
        names = {b"c": "continue", b"r": "reject", b"t": "tempfail", b"a": "accept"}
        if c == b"y":
            return "replycode:" + data.rstrip(b"\0").decode("latin-1").replace(" ", "_")
        return names.get(c, "other:" + c.decode("latin-1"))


def session(spec, form, stage):
    step = "connect"
    try:
        s = connect(spec)
    except OSError:
        return "dropped connect"
    try:
        step = "negotiate"
        send(s, b"O", struct.pack(">III", 6, SMFIF_ALL, SMFIP_ALL))
        n = struct.unpack(">I", recv_exact(s, 4))[0]
        pkt = recv_exact(s, n)
        if pkt[:1] != b"O":
            return "dropped negotiate"
        _, _, pflags = struct.unpack(">III", pkt[1:13])
        if form != "normal":
            send(s, b"D", stage.encode() + BAD[form])
        step = "connect-step"
        if not pflags & SMFIP_NOCONNECT:
            send(s, b"C", b"client.test\0" + b"4" + struct.pack(">H", 4242) + b"192.0.2.10\0")
            if not pflags & SMFIP_NR_CONN:
                reply(s)
        step = "helo"
        send(s, b"H", b"helo.test\0")
        if not pflags & SMFIP_NR_HELO:
            reply(s)
        step = "mail"
        if not (form != "normal" and stage == "M"):
            send(s, b"D", b"M" + GOOD_MAIL)
        send(s, b"M", b"<s@ok-mx.mxs.test>\0")
        mail = reply(s)
        step = "rcpt"
        send(s, b"D", b"Ri\0" + b"4AB3C2\0")
        send(s, b"R", b"<bob@ok-mx.mxs.test>\0")
        rcpt = reply(s)
        send(s, b"Q")
        return "answered %s %s" % (mail, rcpt)
    except (Dropped, OSError):
        return "dropped " + step
    finally:
        s.close()


def main():
    if len(sys.argv) != 5 or sys.argv[2] not in ("normal",) + tuple(BAD) or \
            sys.argv[3] not in ("C", "M"):
        sys.stderr.write(__doc__)
        return 64
    spec, form, stage, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    for _ in range(count):
        print(session(spec, form, stage), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

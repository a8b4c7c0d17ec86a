#!/usr/bin/env bash
# 53-tcp-isolation.sh - one domain's TCP trouble does not fail another domain's lookup.
#
# A truncated UDP answer is asked again over TCP.  c-ares 1.18 handles a TCP connection reset
# by closing every socket of the channel to that server and counting a try against every query
# pending on it, UDP or TCP; with one shared channel, a domain whose TCP connection is reset
# (faultdns `trunc`: TC over UDP, reset over TCP) failed unrelated lookups that were in flight
# at that moment (docs/robustness.md).  Here one mxsane-policyd (budget 1500 ms, nothing
# cached: every request meets DNS) gets, from 4 connections, back-to-back requests for
# trunc.<unique>.fault.test (each one a TCP reset, three times), while on another connection:
#   A. 20 checks, one after the other, of a good domain whose UDP answer takes 100 ms
#      (slow<100+i>: fresh name each time): all 20 DUNNO, each within the budget;
#   B. 20 checks of a good domain with a big MX set (mx<40+i>-slow100: TC over UDP, then the
#      full answer over TCP after 100 ms): all 20 DUNNO - TCP lookups do not share fate with
#      each other either;
#   and the trunc requests themselves stay 451 4.4.3, with resets seen by faultdns during
#   each phase (so the good checks really ran next to them);
#   C. then 40 truncated lookups at once (more than the 32 TCP channels the resolver keeps):
#      all DUNNO.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-policyd
POLICYD="$BUILD_DIR/mxsane-policyd"
start_faultdns || { not_ok "faultdns starts" "see the log above"; finish; }
echo "# faultdns on 127.0.0.1:$FAULT_PORT, log $T_DIR/faultdns.log"

TIMEOUT_MS=1500
LIMIT_MS=$((TIMEOUT_MS + TIMEOUT_MS / 10 + $(slack_ms 150)))
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)

cat >"$T_DIR/p.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$FAULT_PORT" ]; timeout_ms = $TIMEOUT_MS; };
cache = { min_ttl = 0; max_ttl = 0; error_ttl = 0; };
EOC
started=
for attempt in 1 2 3; do
	PORT=$(free_port) || break
	"$POLICYD" -f -c "$T_DIR/p.conf" -l "inet:127.0.0.1:$PORT" "${USER_ARGS[@]}" </dev/null \
		>"$T_DIR/policyd.log" 2>&1 &
	PD_PID=$!
	track_pid "$PD_PID"
	if wait_port "$PORT"; then started=1; break; fi
	cat "$T_DIR/policyd.log" >&2
	stop_pid "$PD_PID"
done
[ -n "$started" ] || { not_ok "mxsane-policyd starts" "see above"; finish; }

cat >"$T_DIR/iso.py" <<'EOPY'
import socket, sys, threading, time

port, limit_ms, flog = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
N = 20
HAMMERS = 4

def say(okay, name, detail=""):
    print(("ok - %s" % name) if okay else ("not ok - %s: %s" % (name, detail)))
    sys.stdout.flush()

class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
    def ask(self, rcpt):
        req = ("request=smtpd_access_policy\nprotocol_state=RCPT\nsender=\nrecipient=%s\n\n"
               % rcpt).encode()
        t0 = time.monotonic()
        self.s.sendall(req)
        while b"\n\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                return None, int((time.monotonic() - t0) * 1000)
            self.buf += d
        rep, self.buf = self.buf.split(b"\n\n", 1)
        return rep.decode(errors="replace").split("\n")[0], int((time.monotonic() - t0) * 1000)

def tcp_resets():
    """trunc queries faultdns received over TCP (each one answered with a reset)."""
    with open(flog, errors="replace") as f:
        return sum(1 for l in f if l.startswith("faultdns: tcp ") and "(trunc)" in l)

stop = threading.Event()
hammer = {"asked": 0, "tempfail": 0, "other": []}
hlock = threading.Lock()

def hammer_worker(h):
    c = Conn()
    i = 0
    while not stop.is_set():
        i += 1
        rep, _ = c.ask("v@trunc.h%d-%d.fault.test" % (h, i))
        with hlock:
            hammer["asked"] += 1
            if rep is not None and rep.startswith("action=451 4.4.3"):
                hammer["tempfail"] += 1
            elif len(hammer["other"]) < 5:
                hammer["other"].append(rep)
        if rep is None:
            return

ths = [threading.Thread(target=hammer_worker, args=(h,)) for h in range(HAMMERS)]
for t in ths:
    t.start()
time.sleep(0.3)  # the resets are under way before the first good check

good = Conn()
def phase(tag, names):
    r0 = tcp_resets()
    fails, late, worst = [], 0, 0
    for name in names:
        rep, ms = good.ask("v@%s.fault.test" % name)
        worst = max(worst, ms)
        if rep != "action=DUNNO":
            fails.append("%s: %r" % (name, rep))
        if ms > limit_ms:
            late += 1
    resets = tcp_resets() - r0
    print("# %s: %d of %d DUNNO, %d failed, max %d ms, %d TCP resets by faultdns meanwhile"
          % (tag, len(names) - len(fails), len(names), len(fails), worst, resets))
    say(not fails, "%s, %d of %d checks DUNNO" % (tag, len(names), len(names)),
        "%d failed, first: %s" % (len(fails), fails[0][:240] if fails else ""))
    say(late == 0, "%s, every check within %d ms (max %d ms)" % (tag, limit_ms, worst),
        "%d late" % late)
    say(resets >= N, "%s, TCP connections were reset meanwhile (%d >= %d)" % (tag, resets, N),
        "only %d" % resets)

phase("A, slow UDP answer next to TCP resets", ["slow%d" % (100 + i) for i in range(N)])
phase("B, slow TCP answer next to TCP resets", ["mx%d-slow100" % (40 + i) for i in range(N)])
stop.set()
for t in ths:
    t.join()
print("# hammer: %d trunc requests, %d got 451 4.4.3" % (hammer["asked"], hammer["tempfail"]))
say(hammer["asked"] > 0 and hammer["tempfail"] == hammer["asked"],
    "every trunc request got 451 4.4.3 (%d)" % hammer["asked"],
    "%d of %d, others: %r" % (hammer["tempfail"], hammer["asked"], hammer["other"]))

# C. more TCP lookups at once than the resolver keeps TCP channels (32): the surplus shares
#    channels, and every one is still answered
res = {}
def big(i):
    try:
        rep, _ = Conn().ask("v@mx%d-slow300.fault.test" % (60 + i))
    except OSError as e:
        rep = "socket error %s" % e
    res[i] = rep
ths = [threading.Thread(target=big, args=(i,)) for i in range(40)]
for t in ths:
    t.start()
for t in ths:
    t.join()
bad = ["%d: %r" % kv for kv in sorted(res.items()) if kv[1] != "action=DUNNO"]
say(not bad, "C, 40 truncated lookups at once (more than 32 TCP channels), all DUNNO",
    "%d failed, first: %s" % (len(bad), bad[0][:240] if bad else ""))
with open(flog, errors="replace") as f:
    peers = {l.split()[2] for l in f if l.startswith("faultdns: tcp ") and "-slow300." in l}
print("# C: 40 lookups over TCP on %d connections" % len(peers))
say(0 < len(peers) <= 32, "C, at most 32 TCP connections at once (%d)" % len(peers),
    "%d" % len(peers))
EOPY

while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) l=${line#not ok - }; not_ok "${l%%: *}" "${l#*: }" ;;
	*) echo "$line" ;;
	esac
done < <(timeout -k 5 240 "$PY" "$T_DIR/iso.py" "$PORT" "$LIMIT_MS" "$T_DIR/faultdns.log" 2>&1)

kill -0 "$PD_PID" 2>/dev/null && ok "mxsane-policyd still running" ||
	not_ok "mxsane-policyd still running" "$(tail -n 5 "$T_DIR/policyd.log")"
finish

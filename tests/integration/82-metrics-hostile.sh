#!/usr/bin/env bash
# 82-metrics-hostile.sh - hostile HTTP clients on the metrics endpoint must not slow the
# mail path.  While 1,000 connections are opened and held, 40 clients send a request one
# byte every 200 ms, and 8 clients send binary garbage over and over, mxsane-policyd answers
# every policy request in time (each within 250 ms: the answers come from the cache), and
# so does mxsane-milter (the endpoint shares its engine thread's loop).  Afterwards the
# endpoint counts the refused (over 64 at once) and timed-out (5 s) connections, and answers
# a scrape again.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/metrics.sh"

need_bin mxsane-policyd mxsane-milter
POLICYD="$BUILD_DIR/mxsane-policyd"
MILTER="$BUILD_DIR/mxsane-milter"
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)
LIMIT_MS=$(slack_ms 250)

start_knot || { not_ok "knotd starts" "see the log above"; finish; }

MPORT=$(free_port) || { not_ok "free port"; finish; }
cat >"$T_DIR/p.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
metrics = { listen = "inet:127.0.0.1:$MPORT"; };
EOC
start_on_free_port policyd "$POLICYD" -f "${USER_ARGS[@]}" -c "$T_DIR/p.conf" \
	-l "inet:127.0.0.1:{PORT}" || { not_ok "mxsane-policyd starts"; finish; }
PPORT=$BG_PORT
wait_port "$MPORT" || not_ok "metrics endpoint listens"

# hostile MPORT SECONDS: the three kinds of hostile clients for SECONDS, in the background
hostile() {
	"$PY" - "$1" "$2" <<'PYEOF' &
import os, random, resource, socket, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
end = time.time() + secs
held = []
def flood():                       # 1,000 connections, held open
    for _ in range(1000):
        try:
            s = socket.socket(); s.setblocking(False)
            s.connect_ex(("127.0.0.1", port)); held.append(s)
        except OSError:
            pass
def slow():                        # a request, one byte every 200 ms
    while time.time() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n" * 4:
                if time.time() >= end:
                    break
                s.send(bytes([b])); time.sleep(0.2)
            s.close()
        except OSError:
            time.sleep(0.05)
def garbage():                     # binary garbage, again and again
    while time.time() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(os.urandom(random.randint(1, 6000)))
            s.close()
        except OSError:
            time.sleep(0.01)
ts = [threading.Thread(target=flood)] + [threading.Thread(target=slow) for _ in range(40)] + \
     [threading.Thread(target=garbage) for _ in range(8)]
for t in ts: t.start()
for t in ts: t.join()
for s in held: s.close()
PYEOF
	HOSTILE_PID=$!
	track_pid "$HOSTILE_PID"
}

# timed_policy ADDR SECONDS: policy requests for SECONDS on one connection and on new ones;
# prints "answered max_ms bad"
timed_policy() {
	"$PY" - "$1" "$2" <<'PYEOF'
import socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
req = b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@ok-mx.mxs.test\nrecipient=b@null-mx.mxs.test\n\n"
n = bad = 0; worst = 0.0
end = time.time() + secs
s = None
while time.time() < end:
    if s is None or n % 10 == 0:
        if s: s.close()
        s = socket.create_connection(("127.0.0.1", port), timeout=5); f = s.makefile("rb")
    t0 = time.monotonic()
    s.sendall(req)
    lines = []
    while True:
        l = f.readline()
        if not l or l == b"\n": break
        lines.append(l)
    dt = (time.monotonic() - t0) * 1000
    worst = max(worst, dt); n += 1
    if not lines or not lines[0].startswith(b"action=556"): bad += 1
    time.sleep(0.01)
print(n, int(worst), bad)
PYEOF
}

# warm the cache, then measure under attack
timed_policy "$PPORT" 0.2 >/dev/null
hostile "$MPORT" 7
sleep 1 # the flood is in
read -r n worst bad < <(timed_policy "$PPORT" 5)
[ "${n:-0}" -ge 100 ] && [ "${bad:-1}" = 0 ] && ok "policyd: $n requests answered right during the attack" ||
	not_ok "policyd: requests answered right during the attack" "n=$n bad=$bad"
[ "${worst:-9999}" -le "$LIMIT_MS" ] && ok "policyd: slowest answer ${worst} ms (limit $LIMIT_MS ms)" ||
	not_ok "policyd: answers in time during the attack" "slowest ${worst} ms > $LIMIT_MS ms"
wait "$HOSTILE_PID" 2>/dev/null
sleep 5.5 # HTTPD_TIMEOUT_MS: every leftover connection has timed out
M="$T_DIR/after.metrics"
scrape "inet:127.0.0.1:$MPORT" "$M" && ok "the endpoint answers a scrape after the attack" ||
	not_ok "the endpoint answers a scrape after the attack"
refused=$(metric "$M" mxsane_metrics_http_requests_total 'result="refused"')
timeouts=$(metric "$M" mxsane_metrics_http_requests_total 'result="timeout"')
errors=$(metric "$M" mxsane_metrics_http_requests_total 'result="error"')
[ "${refused:-0}" -ge 500 ] && ok "connections over 64 refused at accept ($refused)" ||
	not_ok "connections over 64 refused at accept" "$refused"
[ "${timeouts:-0}" -ge 1 ] && ok "slow and silent connections closed at the deadline ($timeouts)" ||
	not_ok "slow and silent connections closed at the deadline" "$timeouts"
[ "${errors:-0}" -ge 1 ] && ok "garbage answered 400/431 ($errors)" || not_ok "garbage answered" "$errors"
assert_eq "no metrics connection left open" 1 "$(metric "$M" mxsane_metrics_http_connections '')"
kill -0 "$(pgrep -f "mxsane-policyd -f .*$T_DIR/p.conf" | head -1)" 2>/dev/null &&
	ok "policyd still runs" || not_ok "policyd still runs"

# ---- the milter: the endpoint shares the engine thread's loop
need_cmd miltertest
MPORT2=$(free_port) || { not_ok "free port"; finish; }
cat >"$T_DIR/m.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
metrics = { listen = "inet:127.0.0.1:$MPORT2"; };
EOC
start_on_free_port milter "$MILTER" -f "${USER_ARGS[@]}" -c "$T_DIR/m.conf" \
	-p "inet:{PORT}@127.0.0.1" || { not_ok "mxsane-milter starts"; finish; }
MILPORT=$BG_PORT
wait_port "$MPORT2"
session() {
	timeout -k 5 30 miltertest -s "$MXS_TOP/tests/milter/session.lua" \
		-D "sock=inet:$MILPORT@127.0.0.1" -D "from=<s@ok-mx.mxs.test>" \
		-D "rcpts=<r@null-mx.mxs.test>" 2>&1
}
session >/dev/null # warm the cache
hostile "$MPORT2" 6
sleep 1
worst=0 n=0 bad=0
end=$(($(now_ms) + 4000))
while [ "$(now_ms)" -lt "$end" ]; do
	t0=$(now_ms)
	out=$(session)
	dt=$(($(now_ms) - t0))
	[ "$dt" -gt "$worst" ] && worst=$dt
	n=$((n + 1))
	[[ $out == *"rcpt <r@null-mx.mxs.test> replycode"* ]] || bad=$((bad + 1))
done
wait "$HOSTILE_PID" 2>/dev/null
[ "$n" -ge 5 ] && [ "$bad" = 0 ] && ok "milter: $n sessions answered right during the attack" ||
	not_ok "milter: sessions answered right during the attack" "n=$n bad=$bad"
# a miltertest session is a process start and a whole SMTP transaction
MLIMIT=$(slack_ms 1000)
[ "$worst" -le "$MLIMIT" ] && ok "milter: slowest session ${worst} ms (limit $MLIMIT ms)" ||
	not_ok "milter: sessions in time during the attack" "slowest ${worst} ms"

finish

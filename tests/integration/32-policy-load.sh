#!/usr/bin/env bash
# 32-policy-load.sh - mxsane-policyd under load and with misbehaving clients:
# 5,000 idle connections held while live
# requests are answered promptly; a slow DNS answer delays only its own request; a client
# that sends half a request and stalls holds up nobody; a client that goes away while its
# check runs gets it cancelled; the idle timeout (also bounding how long one request may take
# to arrive); connections over policy.max_connections refused at once; SIGHUP reload under
# traffic (a change takes effect, no connection dropped, an invalid file keeps the old one).
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-policyd tools/policy_client
POLICYD="$BUILD_DIR/mxsane-policyd"
CLIENT="$BUILD_DIR/tools/policy_client"
IDLE=${IDLE:-5000}
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((IDLE + 200)) ]; then
	skip "open file hard limit $hard is too low for $IDLE connections"
fi
ulimit -n "$hard"

start_knot || { not_ok "knotd starts" "see the log above"; finish; }
start_faultdns || { not_ok "faultdns starts" "see the log above"; finish; }

USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)

# conf FILE [EXTRA...]: knotd first (REFUSED for fault.test sends c-ares to the next
# server), then faultdns; resolver budget 2 s.
conf() {
	local f=$1
	shift
	{
		echo "resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\", \"127.0.0.1:$FAULT_PORT\" ]; timeout_ms = 2000; };"
		printf '%s\n' "$@"
	} >"$f"
}

# start_policyd NAME CONF: on a free port; sets PORT, PD_PID, PD_LOG.
start_policyd() {
	local name=$1 cf=$2 attempt
	for attempt in 1 2 3; do
		PORT=$(free_port) || return 1
		PD_LOG="$T_DIR/$name.log"
		"$POLICYD" -f -c "$cf" -l "inet:127.0.0.1:$PORT" "${USER_ARGS[@]}" </dev/null \
			>"$PD_LOG" 2>&1 &
		PD_PID=$!
		track_pid "$PD_PID"
		wait_port "$PORT" && return 0
		cat "$PD_LOG" >&2
		stop_pid "$PD_PID"
	done
	return 1
}

# kv LINE KEY: the value of KEY=... in a "k=v k=v" line.
kv() {
	local w
	for w in $1; do
		case $w in "$2"=*) echo "${w#*=}"; return 0 ;; esac
	done
	echo "?"
}
# lt A B: A < B for decimals.
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

A_CONF="$T_DIR/a.conf"
conf "$A_CONF" 'policy = { idle_timeout = 300; max_connections = 20000; };'
start_policyd a "$A_CONF" || { not_ok "mxsane-policyd starts" "see above"; finish; }
A_PORT=$PORT A_PID=$PD_PID A_LOG=$PD_LOG
ok "daemon A on port $A_PORT"

# ---- 1. 5,000 idle connections held, live requests answered meanwhile ----
fds_before=$(ls /proc/$A_PID/fd | wc -l)
"$CLIENT" -a "inet:127.0.0.1:$A_PORT" -i "$IDLE" -n 4000 -c 20 -R bob@ok-mx.mxs.test \
	-R bob@null-mx.mxs.test -H 3000 >"$T_DIR/load.out" 2>&1 &
cpid=$!
track_pid "$cpid"
for _ in $(seq 300); do
	grep -q '^holding' "$T_DIR/load.out" && break
	sleep 0.1
done
fds_held=$(ls /proc/$A_PID/fd | wc -l)
rss_held=$(awk '/VmRSS/ { print $2 }' /proc/$A_PID/status)
wait "$cpid"
rc=$?
load=$(grep '^idle_opened' "$T_DIR/load.out")
echo "# load: $load"
echo "# daemon A: $fds_before descriptors before, $fds_held with the idle connections held, RSS ${rss_held} KiB"
assert_eq "policy_client exit status (every request answered, none dropped)" 0 "$rc"
assert_eq "idle connections opened" "$IDLE" "$(kv "$load" idle_opened)"
assert_eq "idle connections still open after the live requests" "$IDLE" "$(kv "$load" idle_alive)"
[ "$fds_held" -ge $((IDLE + fds_before - 5)) ] &&
	ok "daemon held $fds_held descriptors (>= $IDLE connections at once)" ||
	not_ok "daemon holds the idle connections" "only $fds_held descriptors open"
assert_eq "live requests answered" 4000 "$(kv "$load" answered)"
p99=$(kv "$load" p99_ms)
mx=$(kv "$load" max_ms)
lt "$p99" 100 && ok "p99 latency with $IDLE idle connections: $p99 ms (< 100 ms)" ||
	not_ok "p99 latency" "$p99 ms"
lt "$mx" 1000 && ok "max latency $mx ms (< 1 s)" || not_ok "max latency" "$mx ms"
grep -q '^reply 2000 action=556 5.1.10 <bob@null-mx.mxs.test>' "$T_DIR/load.out" &&
	grep -q '^reply 2000 action=DUNNO$' "$T_DIR/load.out" &&
	ok "replies under load: 2000 DUNNO, 2000 reject" ||
	not_ok "replies under load" "$(grep '^reply' "$T_DIR/load.out")"
sleep 0.5
fds_after=$(ls /proc/$A_PID/fd | wc -l)
[ "$fds_after" -le $((fds_before + 2)) ] && ok "descriptors back to $fds_after after the clients left" ||
	not_ok "descriptors released" "$fds_before before, $fds_after after"

# ---- 2..4: slow DNS, half a request, a client that goes away ----
"$PY" - "$A_PORT" >"$T_DIR/misbehave.out" 2>&1 <<'EOF'
import select, socket, sys, time
port = int(sys.argv[1])
def req(rcpt, sender="alice@ok-mx.mxs.test"):
    return ("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=198.51.100.20\n"
            "sender=%s\nrecipient=%s\n\n" % (sender, rcpt)).encode()
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def reply(s, timeout=10):
    data, end = b"", time.time() + timeout
    while not data.endswith(b"\n\n"):
        if not select.select([s], [], [], max(0, end - time.time()))[0]:
            return data.decode() + "<timeout>"
        b = s.recv(4096)
        if not b:
            return data.decode() + "<closed>"
        data += b
    return data.decode()
def out(*a):
    print("\t".join(str(x) for x in a), flush=True)

# 2. the slow one first, then fast ones while it waits for DNS
slow = conn()
t0 = time.time()
slow.sendall(req("bob@timeout.fault.test"))
fast_ms = []
for i in range(20):
    f = conn()
    t = time.time()
    f.sendall(req("bob@ok-mx.mxs.test" if i % 2 else "bob@null-mx.mxs.test"))
    r = reply(f)
    fast_ms.append((time.time() - t) * 1000)
    ok = r in ("action=DUNNO\n\n",) or r.startswith("action=556 5.1.10 ")
    if not ok:
        out("fastbad", repr(r))
    f.close()
first_fast_done = (time.time() - t0) * 1000
r = reply(slow)
slow_ms = (time.time() - t0) * 1000
out("slow", "%.0f" % slow_ms, r.strip().replace("\n", " "))
out("fast", "%.1f" % max(fast_ms), "%.0f" % first_fast_done)
slow.close()

# 3. half a request, then silence; others must not wait for it
half = conn()
half.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecip")
time.sleep(0.2)
worst = 0
for i in range(20):
    f = conn()
    t = time.time()
    f.sendall(req("bob@ok-mx.mxs.test"))
    r = reply(f)
    worst = max(worst, (time.time() - t) * 1000)
    if r != "action=DUNNO\n\n":
        out("halfbad", repr(r))
    f.close()
# the stalled one can still finish its request and be answered
half.sendall(b"ient=bob@null-mx.mxs.test\n\n")
r = reply(half)
out("half", "%.1f" % worst, r.strip().replace("\n", " "))
half.close()

# 4. a client that goes away while its check is waiting for DNS
gone = conn()
gp = gone.getsockname()[1]
gone.sendall(req("bob@timeout.fault.test"))
time.sleep(0.3)
gone.close()
out("gone", gp)
# a second one that resets the connection (SO_LINGER 0)
rst = conn()
rp = rst.getsockname()[1]
rst.sendall(req("bob@timeout.fault.test"))
time.sleep(0.3)
import struct
rst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
rst.close()
out("reset", rp)
time.sleep(2.5)   # past resolver.timeout_ms: a callback for a freed connection would crash now
f = conn()
f.sendall(req("bob@ok-mx.mxs.test"))
out("after", reply(f).strip())
f.close()
EOF
cat "$T_DIR/misbehave.out"
line=$(grep '^slow' "$T_DIR/misbehave.out")
slow_ms=$(cut -f2 <<<"$line")
slow_reply=$(cut -f3 <<<"$line")
assert_match "DNS timeout answered with 451 4.4.3" '^action=451 4\.4\.3 ' "$slow_reply"
[ -n "$slow_ms" ] && [ "$slow_ms" -ge 1800 ] && [ "$slow_ms" -le 2200 ] &&
	ok "DNS timeout answered after $slow_ms ms (budget 2000 ms + 10%)" ||
	not_ok "DNS timeout within budget" "${slow_ms:-?} ms"
line=$(grep '^fast' "$T_DIR/misbehave.out")
fast_max=$(cut -f2 <<<"$line")
fast_all=$(cut -f3 <<<"$line")
lt "$fast_max" 200 && ok "requests behind a slow DNS answer: slowest $fast_max ms" ||
	not_ok "slow DNS does not delay others" "slowest fast request ${fast_max:-?} ms"
lt "$fast_all" 1500 && ok "all 20 answered ${fast_all} ms after the slow one was sent" ||
	not_ok "fast requests done before the slow one" "${fast_all:-?} ms"
grep -q '^fastbad\|^halfbad' "$T_DIR/misbehave.out" && not_ok "fast replies" "wrong reply" ||
	ok "fast replies correct"
line=$(grep '^half' "$T_DIR/misbehave.out")
lt "$(cut -f2 <<<"$line")" 200 && ok "a stalled half request holds up nobody (slowest $(cut -f2 <<<"$line") ms)" ||
	not_ok "stalled half request" "$line"
assert_match "the stalled client is answered once it completes" '^action=556 5\.1\.10 ' "$(cut -f3 <<<"$line")"
gp=$(grep '^gone' "$T_DIR/misbehave.out" | cut -f2)
rp=$(grep '^reset' "$T_DIR/misbehave.out" | cut -f2)
grep -q "client 127.0.0.1:$gp: disconnected with a request in progress" "$A_LOG" &&
	ok "client gone while its check ran: noticed" || not_ok "disconnect noticed" "no log line for port $gp"
grep -q "client 127.0.0.1:$rp: .*closing\|client 127.0.0.1:$rp: disconnected" "$A_LOG" &&
	ok "client reset while its check ran: noticed" || not_ok "reset noticed" "no log line for port $rp"
assert_eq "still serving afterwards" "action=DUNNO" "$(grep '^after' "$T_DIR/misbehave.out" | cut -f2)"
# the sender (ok-mx, cached) is decided at once; the recipient check waits for DNS: only the
# slow request's recipient may have a decision line, the two abandoned ones none
n=$(grep 'role=recipient' "$A_LOG" | grep -c 'recipient=bob@timeout.fault.test')
assert_eq "cancelled checks logged no decision (only the answered slow one did)" 1 "$n"

# ---- 5. SIGHUP under traffic ----
"$CLIENT" -a "inet:127.0.0.1:$A_PORT" -i 500 -d 5 -c 10 -g 5 -R bob@null-mx.mxs.test \
	>"$T_DIR/reload.out" 2>&1 &
cpid=$!
track_pid "$cpid"
sleep 2
conf "$A_CONF" 'policy = { idle_timeout = 300; max_connections = 20000; };' 'mode = "monitor";'
kill -HUP "$A_PID"
wait "$cpid"
rc=$?
cat "$T_DIR/reload.out"
load=$(grep '^idle_opened' "$T_DIR/reload.out")
assert_eq "traffic across the reload: every request answered, none dropped" 0 "$rc"
assert_eq "no connection dropped by the reload" 0 "$(kv "$load" dropped)"
assert_eq "idle connections kept across the reload" 500 "$(kv "$load" idle_alive)"
grep -q '^reply [0-9]* action=556 5.1.10 ' "$T_DIR/reload.out" && ok "enforce before the reload" ||
	not_ok "enforce before the reload" "no 556 reply"
grep -q '^reply [0-9]* action=PREPEND X-MXSane: null_mx null-mx.mxs.test (.*would reject)' "$T_DIR/reload.out" &&
	ok "monitor after the reload (PREPEND ... would reject)" ||
	not_ok "monitor after the reload" "no PREPEND reply"
grep -q '^last 10 action=PREPEND X-MXSane: ' "$T_DIR/reload.out" &&
	ok "every connection's last reply is the new configuration's" ||
	not_ok "new configuration on every connection" "$(grep '^last' "$T_DIR/reload.out")"
grep -q "configuration reloaded from $A_CONF (mode monitor" "$A_LOG" && ok "reload logged" ||
	not_ok "reload logged" "no line"

# an invalid file: logged with FILE:LINE, the running configuration stays, nothing dropped
printf 'resolver = { timeout_ms = 3000; };\nmode = "sideways";\n' >"$A_CONF"
"$CLIENT" -a "inet:127.0.0.1:$A_PORT" -d 3 -c 5 -g 5 -R bob@null-mx.mxs.test \
	>"$T_DIR/reload2.out" 2>&1 &
cpid=$!
track_pid "$cpid"
sleep 1
kill -USR1 "$A_PID"
wait "$cpid"
rc=$?
assert_eq "traffic across a failed reload: answered, none dropped" 0 "$rc"
grep -q "reload failed, keeping the running configuration: $A_CONF:2" "$A_LOG" &&
	ok "invalid configuration on SIGUSR1: logged with FILE:LINE" ||
	not_ok "failed reload logged" "$(grep 'reload' "$A_LOG" | tail -n 2)"
grep -q '^reply [0-9]* action=556' "$T_DIR/reload2.out" &&
	not_ok "old configuration kept" "enforce replies after a failed reload" ||
	ok "old configuration (monitor) kept after the failed reload"

# a shorter idle timeout by reload applies to connections already open
conf "$A_CONF" 'policy = { idle_timeout = 1; max_connections = 20000; };'
"$PY" - "$A_PORT" "$A_PID" >"$T_DIR/idle-reload.out" 2>&1 <<'EOF'
import os, select, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
time.sleep(0.2)
os.kill(pid, signal.SIGHUP)
t = time.time()
r = select.select([s], [], [], 5)[0]
print("closed" if r and s.recv(1) == b"" else "open", "%.1f" % (time.time() - t))
EOF
read -r st secs <"$T_DIR/idle-reload.out"
[ "$st" = closed ] && lt "$secs" 3 && ok "idle_timeout lowered by reload closes an open connection (${secs}s)" ||
	not_ok "idle_timeout by reload" "$(cat "$T_DIR/idle-reload.out")"
kill -TERM "$A_PID"
wait "$A_PID"
assert_eq "daemon A exits 0" 0 "$?"
grep -q 'stopped: .* [1-9][0-9]* checks cancelled' "$A_LOG" && ok "cancelled checks counted at stop" ||
	not_ok "cancelled checks counted" "$(grep stopped: "$A_LOG")"

# ---- 6..8: idle timeout, slow trickle, max_connections ----
B_CONF="$T_DIR/b.conf"
conf "$B_CONF" 'policy = { idle_timeout = 2; max_connections = 20; };'
start_policyd b "$B_CONF" || { not_ok "daemon B starts" "see above"; finish; }
B_PORT=$PORT B_PID=$PD_PID B_LOG=$PD_LOG
"$PY" - "$B_PORT" >"$T_DIR/b.out" 2>&1 <<'EOF'
import select, socket, sys, time
port = int(sys.argv[1])
REQ = b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=bob@ok-mx.mxs.test\n\n"
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=10)
def closed_within(s, secs):
    """Seconds until the server closed s (reading and discarding), or None."""
    t, data = time.time(), b""
    while time.time() - t < secs:
        if select.select([s], [], [], 0.05)[0]:
            try:
                b = s.recv(4096)
            except ConnectionResetError:
                return time.time() - t, data
            if not b:
                return time.time() - t, data
            data += b
    return None, data
def out(*a):
    print("\t".join(str(x) for x in a), flush=True)

# 6. idle connections: one that never spoke, one after a request
a, b = conn(), conn()
b.sendall(REQ)
t0 = time.time()
ca, _ = closed_within(a, 6)
cb, data = closed_within(b, 6)
out("idle", "%.1f" % ca if ca is not None else "open", "%.1f" % (time.time() - t0 if cb else -1), data.decode().strip())
# an active connection with requests every 0.5 s lives on past the timeout
c = conn()
alive = True
for i in range(8):
    c.sendall(REQ)
    r, _ = b"", None
    t = time.time()
    while not r.endswith(b"\n\n") and time.time() - t < 5:
        chunk = c.recv(4096)
        if not chunk:
            alive = False
            break
        r += chunk
    time.sleep(0.5)
out("active", "alive" if alive else "closed")
c.close()

# 7. one byte every 0.25 s: still incomplete when the idle timeout runs out from its first byte
d = conn()
msg = REQ.replace(b"\n\n", b"\nx_pad=" + b"z" * 100 + b"\n\n")
t0, closed = time.time(), False
for i in range(len(msg)):
    try:
        d.sendall(msg[i:i + 1])
    except (BrokenPipeError, ConnectionResetError):
        closed = True
        break
    r = select.select([d], [], [], 0.25)[0]
    if r:
        try:
            if d.recv(1) == b"":
                closed = True
                break
        except ConnectionResetError:
            closed = True
            break
out("trickle", "closed" if closed else "open", "%.1f" % (time.time() - t0))
d.close()

# 8. max_connections = 20: 20 held, the next ones closed at once, then room again
held = [conn() for _ in range(20)]
time.sleep(0.3)
extra = [conn() for _ in range(5)]
refused = 0
for s in extra:
    c_, data = closed_within(s, 1.5)
    if c_ is not None and data == b"":
        refused += 1
held_ok = sum(1 for s in held if closed_within(s, 0.01)[0] is None)
out("over", refused, held_ok)
for s in held:
    s.close()
for s in extra:
    s.close()
time.sleep(0.3)
e = conn()
e.sendall(REQ)
_, data = closed_within(e, 1)
out("again", data.decode().strip())
EOF
cat "$T_DIR/b.out"
line=$(grep '^idle' "$T_DIR/b.out")
ca=$(cut -f2 <<<"$line")
cb=$(cut -f3 <<<"$line")
[ "$ca" != open ] && lt 1.5 "$ca" && lt "$ca" 3.5 && ok "silent connection closed after idle_timeout=2 (${ca}s)" ||
	not_ok "idle timeout" "silent connection: $ca"
lt 1.5 "$cb" && lt "$cb" 3.5 && ok "connection idle after its answer closed after ${cb}s" ||
	not_ok "idle timeout after a request" "$cb"
assert_eq "answer before the idle close" "action=DUNNO" "$(cut -f4 <<<"$line")"
grep -q 'idle for 2 s; closing' "$B_LOG" && ok "idle close logged" || not_ok "idle close logged" "no line"
assert_eq "a connection in use outlives the idle timeout" alive "$(grep '^active' "$T_DIR/b.out" | cut -f2)"
line=$(grep '^trickle' "$T_DIR/b.out")
[ "$(cut -f2 <<<"$line")" = closed ] && lt "$(cut -f3 <<<"$line")" 3.5 &&
	ok "one byte every 0.25 s: closed $(cut -f3 <<<"$line")s after the first byte" ||
	not_ok "slow trickle bounded" "$line"
grep -q 'request not complete after 2 s; closing' "$B_LOG" && ok "trickle close logged" ||
	not_ok "trickle close logged" "no line"
line=$(grep '^over' "$T_DIR/b.out")
assert_eq "connections over max_connections closed at once, without a reply" 5 "$(cut -f2 <<<"$line")"
assert_eq "the 20 within the limit stay open" 20 "$(cut -f3 <<<"$line")"
grep -q 'connection from 127.0.0.1:[0-9]* refused: 20 connections open (policy.max_connections = 20)' "$B_LOG" &&
	ok "refusal logged" || not_ok "refusal logged" "no line"
assert_eq "room again after they left" "action=DUNNO" "$(grep '^again' "$T_DIR/b.out" | cut -f2)"
kill -TERM "$B_PID"
wait "$B_PID"
assert_eq "daemon B exits 0" 0 "$?"
finish

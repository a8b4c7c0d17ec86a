#!/usr/bin/env bash
# 52-fd-limits.sh - both daemons at an open file limit of 64 (ulimit -n: soft and hard, so
# that it cannot be raised) with 200 clients at once (tests/tools/fdload.py), each asking
# about a name of its own while the house is full, so that every check needs a DNS socket:
#   - the connections the daemon holds get real verdicts (DUNNO / continue for a usable
#     domain, 550 5.1.2 for a nonexistent one), never a 451 for want of a DNS socket;
#   - the others are refused cleanly: closed at once, none left hanging unanswered;
#   - the daemon does not spin while saturated (under 30 % of a core over one second);
#   - once the clients close, a new one is served at once (within a second);
#   - the log says why connections are refused, and mxsane-policyd says at start that
#     policy.max_connections does not fit the limit.
# And the reason logged when a DNS query gets no descriptor at all (mxsane-check at a limit
# of 6): a local resource limit, not the DNS server; and mxsane-milter's milter.timeout
# (smfi_settimeout): a connection stalled in the middle of a command is closed after it.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-policyd mxsane-milter mxsane-check
# valgrind needs descriptors of its own beyond the limit under test
[ "${MXS_VALGRIND:-0}" = 1 ] && skip "the descriptor limits under test leave valgrind none"
LIMIT=64
CLIENTS=200
CPU_MAX=30
RECOVER_MAX_MS=1000
start_faultdns || { not_ok "faultdns starts" "see the log above"; finish; }
CONF="$T_DIR/mxsane.conf"
cat >"$CONF" <<EOF
resolver = { servers = [ "127.0.0.1:$FAULT_PORT" ]; timeout_ms = 2000; };
milter = { timeout = 2; };
EOF
USER_ARGS=""
[ "$(id -u)" = 0 ] && USER_ARGS="-u root"

kv() {
	local w
	for w in $1; do case $w in "$2"=*) echo "${w#*=}"; return 0 ;; esac; done
	echo "?"
}

# load NAME: fdload.py against the daemon on $BG_PORT / $BG_PID, then the assertions.
load() {
	local name=$1 out held
	out=$(timeout -k 5 60 "$PY" "$MXS_TOP/tests/tools/fdload.py" "$name" "$BG_PORT" "$CLIENTS" \
		"$BG_PID" 2>&1)
	echo "# $name: $out"
	held=$(kv "$out" served)
	[ "$held" != "?" ] && [ "$held" -ge 20 ] &&
		ok "$name: $held of $CLIENTS connections held at a limit of $LIMIT, each with the right verdict" ||
		not_ok "$name: connections held with the right verdict" "$out"
	assert_eq "$name: no held connection answered wrongly (451 for want of a DNS socket)" 0 \
		"$(kv "$out" wrong)"
	assert_eq "$name: the rest refused cleanly (closed at once)" "$((CLIENTS - held))" \
		"$(kv "$out" refused)"
	assert_eq "$name: no connection left hanging unanswered" 0 "$(kv "$out" silent)"
	local cpu rec
	cpu=$(kv "$out" cpu_pct)
	[ "$cpu" != "?" ] && [ "$cpu" -le "$CPU_MAX" ] &&
		ok "$name: $cpu % of a core while saturated (<= $CPU_MAX %)" ||
		not_ok "$name: no spinning while saturated" "cpu_pct=$cpu"
	rec=$(kv "$out" recover_ms)
	[ "$rec" != "?" ] && [ "$rec" -ge 0 ] && [ "$rec" -le "$RECOVER_MAX_MS" ] &&
		ok "$name: a new client served ${rec} ms after the others closed" ||
		not_ok "$name: recovers at once when the clients close" "recover_ms=$rec"
}

# ---- mxsane-policyd
start_on_free_port policyd bash -c "ulimit -n $LIMIT && exec '$BUILD_DIR/mxsane-policyd' \
	-f $USER_ARGS -c '$CONF' -l inet:127.0.0.1:{PORT}" ||
	{ not_ok "mxsane-policyd starts at a limit of $LIMIT" "see the log above"; finish; }
load policy
assert_match "policyd: says at start that policy.max_connections does not fit" \
	"policy.max_connections \(20000\) does not fit the open file limit \(64\): at most [0-9]+ connections" \
	"$(cat "$T_DIR/policyd.log")"
assert_match "policyd: logs why connections are refused" \
	"refused: [0-9]+ connections open, all the open file limit \(64\) allows" \
	"$(cat "$T_DIR/policyd.log")"
stop_pid "$BG_PID"

# ---- mxsane-milter
start_on_free_port milter bash -c "ulimit -n $LIMIT && exec '$BUILD_DIR/mxsane-milter' \
	-f $USER_ARGS -c '$CONF' -p inet:{PORT}@127.0.0.1" ||
	{ not_ok "mxsane-milter starts at a limit of $LIMIT" "see the log above"; finish; }
load milter
assert_match "milter: logs why connections are refused" \
	"MTA connection refused: every descriptor below [0-9]+ is in use" "$(cat "$T_DIR/milter.log")"

# milter.timeout = 2: half a command, then nothing.  libmilter's default would hold the
# connection (and a worker thread) for 7210 s.
t=$("$PY" - "$BG_PORT" <<'EOPY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
s.sendall(b"\0\0")  # the first half of a packet length
t0 = time.monotonic()
try:
    d = s.recv(1)
except OSError:
    d = b""
print("closed after %d ms" % ((time.monotonic() - t0) * 1000) if not d else "answered")
EOPY
)
assert_match "milter: a connection stalled mid-command is closed after milter.timeout (2 s)" \
	"^closed after (1[5-9][0-9][0-9]|[2-5][0-9][0-9][0-9]) ms$" "$t"
stop_pid "$BG_PID"

# ---- no descriptor at all for the DNS query: the reason names the local limit
out=$(ulimit -n 6 && "$BUILD_DIR/mxsane-check" -c "$CONF" good-1.fault.test 2>&1)
assert_match "a DNS query without a descriptor: the reason is the local limit" \
	"local resource limit: no file descriptor for the DNS query" "$out"
assert_eq "... and does not blame the DNS server" "" "$(grep -i 'SERVFAIL or REFUSED' <<<"$out")"
finish

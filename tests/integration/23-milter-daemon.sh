#!/usr/bin/env bash
# 23-milter-daemon.sh - mxsane-milter as a daemon: -n (exit 0 / 78 with FILE:LINE), -V, usage
# errors, refusing root without -u, privilege drop (-u nobody:nogroup: /proc/PID/status),
# socket ownership and mode, pid file, detaching, built-in defaults, debug logging, a socket
# that cannot be opened, a stale unix socket left by a SIGKILLed instance, a symlink or a
# regular file at the socket path (refused, never followed or removed), a live socket
# (refused), configuration reload on SIGUSR1 under traffic (a change takes effect, an
# invalid file is logged and the old configuration kept, no session fails, the resolver is
# replaced), and SIGTERM with a connection open (exit 0, pid file and socket removed).
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-milter
need_cmd miltertest
MILTER="$BUILD_DIR/mxsane-milter"
LUA="$MXS_TOP/tests/milter/session.lua"

start_knot || { not_ok "knotd starts" "see the log above"; finish; }

conf() { # FILE [EXTRA-LINES]
	{
		echo "resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\" ]; timeout_ms = 2000; };"
		[ $# -lt 2 ] || printf '%s\n' "$2"
	} >"$1"
}
CONF="$T_DIR/mxsane.conf"
conf "$CONF"

# run ARGS...: run the milter to completion (bounded); sets OUT, ERR, RC.
run() {
	timeout -k 5 20 "$MILTER" "$@" >"$T_DIR/out" 2>"$T_DIR/err"
	RC=$?
	OUT=$(cat "$T_DIR/out")
	ERR=$(cat "$T_DIR/err")
}

# term PID: SIGTERM, wait up to 10 s, reap; sets TRC (exit status, or "running").
term() {
	kill -TERM "$1" 2>/dev/null
	if wait_gone "$1" 10; then
		wait "$1" 2>/dev/null
		TRC=$?
	else
		TRC=running
	fi
}

# session SOCK VAR=VALUE...: one miltertest session; sets OUT, RC.
session() {
	local sock=$1 a
	shift
	local args=(-D "sock=$sock")
	for a in "$@"; do args+=(-D "$a"); done
	OUT=$(timeout -k 5 60 miltertest -s "$LUA" "${args[@]}" 2>&1)
	RC=$?
}

# ---- -n, -V, usage
run -n -c "$CONF"
assert_eq "-n with a good file: exit 0" 0 "$RC"
assert_eq "-n with a good file: message" "configuration OK: $CONF" "$OUT"
printf 'resolver = { timeout_ms = 3000; };\nactions = { null_mx = "bounce"; };\n' >"$T_DIR/bad.conf"
run -n -c "$T_DIR/bad.conf"
assert_eq "-n with a bad file: exit 78" 78 "$RC"
assert_match "-n with a bad file: FILE:LINE: message" "^mxsane-milter: $T_DIR/bad\.conf:2: .*bounce" \
	"$ERR"
printf 'resolver = { timeout_ms = 3000;\n' >"$T_DIR/syntax.conf"
run -n -c "$T_DIR/syntax.conf"
assert_eq "-n with a syntax error: exit 78" 78 "$RC"
assert_match "-n with a syntax error: FILE:LINE" "$T_DIR/syntax\.conf:[0-9]+: syntax error" "$ERR"
run -n -c "$T_DIR/missing.conf"
assert_eq "-n with a missing file: exit 78" 78 "$RC"
assert_match "-n with a missing file: names it" "$T_DIR/missing\.conf" "$ERR"
run -V
assert_eq "-V: exit 0" 0 "$RC"
assert_match "-V: version" '^mxsane-milter [0-9]+\.[0-9]+\.[0-9]+$' "$OUT"
run -x
assert_eq "unknown option: exit 64" 64 "$RC"
run -f -c "$CONF" extra-argument
assert_eq "extra argument: exit 64" 64 "$RC"

# ---- root without -u is refused (before anything is opened)
SOCK="$T_DIR/root.sock"
run -f -c "$CONF" -p "unix:$SOCK"
assert_eq "root without -u: exit 64" 64 "$RC"
assert_match "root without -u: says why" 'refusing to run as root.*-u USER' "$ERR"
assert_eq "root without -u: no socket created" "absent" "$([ -e "$SOCK" ] && echo present || echo absent)"
run -f -c "$CONF" -u no-such-user-mxs -p "unix:$SOCK"
assert_eq "unknown -u user: exit 64" 64 "$RC"

# ---- a socket that cannot be opened: exit 69 with a message naming it
BUSY=$(free_port)
start_bg busy "$PY" -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $BUSY)); s.listen(1); time.sleep(120)"
BUSY_PID=$BG_PID
wait_port "$BUSY"
run -f -u root -c "$CONF" -p "inet:$BUSY@127.0.0.1"
assert_eq "port in use: exit 69" 69 "$RC"
assert_match "port in use: message names the socket" "cannot open socket inet:$BUSY@127\.0\.0\.1: " "$ERR"
stop_pid "$BUSY_PID"
run -f -u root -c "$CONF" -p "unix:$T_DIR/no/such/dir/m.sock"
assert_eq "socket in a missing directory: exit 69" 69 "$RC"
assert_match "socket in a missing directory: message" "unix:$T_DIR/no/such/dir/m\.sock" "$ERR"

# ---- inet6:PORT@[::1] (miltertest cannot connect to IPv6: a raw option negotiation instead)
if "$PY" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	P6=$(free_port)
	start_bg v6 "$MILTER" -f -u root -c "$CONF" -p "inet6:$P6@[::1]"
	PID=$BG_PID
	NEG=
	for i in $(seq 50); do
		NEG=$("$PY" - "$P6" <<'EOF6' 2>/dev/null
import socket, struct, sys
s = socket.create_connection(("::1", int(sys.argv[1])), timeout=2)
body = b"O" + struct.pack(">III", 6, 0x1ff, 0x1fffff)
s.sendall(struct.pack(">I", len(body)) + body)
n = struct.unpack(">I", s.recv(4))[0]
print(chr(s.recv(n)[0]))
EOF6
) && break
		sleep 0.1
	done
	assert_eq "-p inet6:PORT@[::1]: listens and negotiates" "O" "$NEG"
	term "$PID"
else
	echo "# SKIP inet6: no ::1 on this machine"
fi

# ---- privilege drop, socket permissions, pid file; the socket dir belongs to nobody so the
# daemon can remove its socket when it stops.
chmod 755 "$T_DIR"
RUN="$T_DIR/run"
install -d -o nobody -g nogroup -m 755 "$RUN"
SOCK="$RUN/milter.sock"
PIDF="$RUN/milter.pid"
start_bg drop "$MILTER" -f -d -c "$CONF" -u nobody:nogroup -p "unix:$SOCK" -P "$PIDF"
PID=$BG_PID
wait_file "$PIDF" 5
assert_eq "pid file holds the daemon's pid" "$PID" "$(cat "$PIDF" 2>/dev/null)"
assert_eq "-u nobody:nogroup: real, effective, saved, fs uid" "65534 65534 65534 65534" \
	"$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$PID/status")"
assert_eq "-u nobody:nogroup: gids" "65534 65534 65534 65534" \
	"$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$PID/status")"
assert_eq "-u nobody:nogroup: supplementary groups" "65534" \
	"$(awk '/^Groups:/ { $1 = ""; print substr($0, 2) }' "/proc/$PID/status" | xargs)"
assert_eq "every thread dropped root" "" \
	"$(grep -h '^Uid:' /proc/"$PID"/task/*/status | grep -v '65534.65534.65534.65534')"
assert_eq "socket: 0660 nobody:nogroup" "660 nobody:nogroup" "$(stat -c '%a %U:%G' "$SOCK")"
session "unix:$SOCK" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test>"
assert_eq "the dropped daemon answers" "rcpt <bob@null-mx.mxs.test> replycode" \
	"$(grep '^rcpt' <<<"$OUT")"
assert_match "-d: connections are logged" 'connect from client\.test \[192\.0\.2\.10\]' \
	"$(cat "$T_DIR/drop.log")"

# ---- a live socket is refused, the running instance is untouched
run -f -c "$CONF" -u nobody:nogroup -p "unix:$SOCK"
assert_eq "live socket: second instance exits 69" 69 "$RC"
assert_match "live socket: says another instance runs" "in use: another instance is running" "$ERR"
session "unix:$SOCK" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test>"
assert_eq "live socket: the first instance still answers" \
	"rcpt <bob@null-mx.mxs.test> replycode" "$(grep '^rcpt' <<<"$OUT")"

# ---- SIGTERM with a connection open: exit 0, pid file and socket removed
session "unix:$SOCK" "from=<s@ok-mx.mxs.test>" "pause=8" &
MT=$!
sleep 1
term "$PID"
assert_eq "SIGTERM with a connection open: exit status 0" 0 "$TRC"
assert_eq "SIGTERM: pid file removed" "absent" "$([ -e "$PIDF" ] && echo present || echo absent)"
assert_eq "SIGTERM: socket removed" "absent" "$([ -e "$SOCK" ] && echo present || echo absent)"
wait "$MT"
assert_match "SIGTERM: logged" 'stopping' "$(cat "$T_DIR/drop.log")"

# ---- a socket left by a SIGKILLed instance is removed on restart
start_bg killed "$MILTER" -f -c "$CONF" -u nobody:nogroup -p "unix:$SOCK"
PID=$BG_PID
wait_file "$SOCK" 5
kill -KILL "$PID"
wait "$PID" 2>/dev/null
assert_eq "SIGKILL leaves the socket behind" "socket" "$([ -S "$SOCK" ] && echo socket)"
start_bg restarted "$MILTER" -f -c "$CONF" -u nobody:nogroup -p "unix:$SOCK"
PID=$BG_PID
for i in $(seq 50); do
	session "unix:$SOCK" "from=<s@null-mx.mxs.test>"
	[ "$RC" = 0 ] && break
	sleep 0.1
done
assert_eq "restart over a stale socket: it answers" "mail replycode" "$(grep '^mail' <<<"$OUT")"
term "$PID"
assert_eq "restart over a stale socket: clean stop" 0 "$TRC"

# ---- a symlink at the socket path: refused, neither followed nor removed
echo "precious" >"$T_DIR/target"
ln -s "$T_DIR/target" "$SOCK"
run -f -c "$CONF" -u nobody:nogroup -p "unix:$SOCK"
assert_eq "symlink at the socket path: exit 69" 69 "$RC"
assert_match "symlink: message" "is not a socket \(a symbolic link\): not removing it" "$ERR"
assert_eq "symlink: still a symlink" "link" "$([ -L "$SOCK" ] && echo link)"
assert_eq "symlink: its target untouched" "precious" "$(cat "$T_DIR/target")"
rm -f "$SOCK"
ln -s "$T_DIR/nowhere" "$SOCK"
run -f -c "$CONF" -u nobody:nogroup -p "unix:$SOCK"
assert_eq "dangling symlink: exit 69" 69 "$RC"
assert_eq "dangling symlink: nothing created at its target" "absent" \
	"$([ -e "$T_DIR/nowhere" ] && echo present || echo absent)"
rm -f "$SOCK"
echo "data" >"$SOCK"
run -f -c "$CONF" -u nobody:nogroup -p "unix:$SOCK"
assert_eq "regular file at the socket path: exit 69, kept" "69 data" "$RC $(cat "$SOCK")"
rm -f "$SOCK"

# ---- detaching (no -f): the parent returns at once, the daemon runs with the pid file
run -c "$CONF" -u nobody:nogroup -p "unix:$SOCK" -P "$PIDF"
assert_eq "detach: the starting process exits 0" 0 "$RC"
wait_file "$PIDF" 5
DPID=$(cat "$PIDF" 2>/dev/null)
if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
	ok "detach: the daemon runs (pid $DPID)"
	track_pid "$DPID"
	assert_eq "detach: in its own session" "$DPID" "$(ps -o sid= -p "$DPID" | xargs)"
	assert_eq "detach: working directory /" "/" "$(readlink "/proc/$DPID/cwd")"
	session "unix:$SOCK" "from=<s@null-mx.mxs.test>"
	assert_eq "detach: the daemon answers" "mail replycode" "$(grep '^mail' <<<"$OUT")"
	kill -TERM "$DPID"
	wait_gone "$DPID" 10
	assert_eq "detach: SIGTERM stops it and removes the pid file" "absent" \
		"$([ -e "$PIDF" ] && echo present || echo absent)"
else
	not_ok "detach: the daemon runs" "pid file: '$DPID'; $ERR"
fi

# ---- no -c and no default file: built-in defaults, logged
if [ ! -e /etc/mxsane/mxsane.conf ]; then
	P=$(free_port)
	start_bg defaults "$MILTER" -f -u root -p "inet:$P@127.0.0.1"
	PID=$BG_PID
	wait_port "$P"
	# the line may follow the listening socket by a moment (much longer under valgrind)
	for _ in $(seq $(($(slack_ms 1000) / 100))); do
		grep -q 'running with built-in defaults' "$T_DIR/defaults.log" && break
		sleep 0.1
	done
	assert_match "no configuration file: runs with built-in defaults and says so" \
		'mxsane\.conf does not exist: running with built-in defaults' \
		"$(cat "$T_DIR/defaults.log")"
	term "$PID"
	assert_eq "built-in defaults: clean stop" 0 "$TRC"
else
	echo "# SKIP built-in defaults: /etc/mxsane/mxsane.conf exists on this machine"
fi

# ---- reload on SIGUSR1 under traffic
RCONF="$T_DIR/reload.conf"
conf "$RCONF" 'actions = { mx_cname = "warn"; };'
P=$(free_port)
start_bg reload "$MILTER" -f -u root -c "$RCONF" -p "inet:$P@127.0.0.1"
RPID=$BG_PID
wait_port "$P" || not_ok "reload instance starts" "$(cat "$T_DIR/reload.log")"
traffic() { # OUTFILE: sessions until $T_DIR/stop exists, one line each
	local n=0 out rc
	while [ ! -e "$T_DIR/stop" ]; do
		n=$((n + 1))
		out=$(timeout -k 5 30 miltertest -s "$LUA" -D "sock=inet:$P@127.0.0.1" \
			-D "from=<s@ok-mx.mxs.test>" \
			-D "rcpts=<a@null-mx.mxs.test> <b@mx-cname.mxs.test> <c@ok-mx.mxs.test>" 2>&1)
		rc=$?
		echo "$n rc=$rc $(tr '\n' ' ' <<<"$out")"
	done >"$1"
}
rm -f "$T_DIR/stop"
traffic "$T_DIR/traffic1" &
T1=$!
traffic "$T_DIR/traffic2" &
T2=$!
# a session that is connected across both reloads
(
	session "inet:$P@127.0.0.1" "from=<s@ok-mx.mxs.test>" "pause=3" \
		"rcpts=<a@null-mx.mxs.test> <b@mx-cname.mxs.test>"
	echo "rc=$RC $(tr '\n' ' ' <<<"$OUT")" >"$T_DIR/across"
) &
ACROSS=$!
sleep 1
# 1: an invalid file is reported with FILE:LINE and the configuration in use stays
printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = 2000; };\nactions = { mx_cname = reject; };\n' \
	"$KNOT_PORT" >"$RCONF"
kill -USR1 "$RPID"
sleep 1
assert_match "reload of an invalid file: logged with FILE:LINE, old kept" \
	"reload: $RCONF:2: .*keeping the configuration in use" "$(cat "$T_DIR/reload.log")"
# 2: a valid change (and a new resolver budget) takes effect
printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = 2500; };\nactions = { mx_cname = "reject"; };\n' \
	"$KNOT_PORT" >"$RCONF"
kill -USR1 "$RPID"
sleep 1.5
touch "$T_DIR/stop"
wait "$T1" "$T2" "$ACROSS"
LOG=$(cat "$T_DIR/reload.log")
assert_match "reload of a valid file: logged" "configuration reloaded from $RCONF" "$LOG"
assert_eq "-p given: no warning about milter.socket on reload" "" "$(grep 'milter.socket' <<<"$LOG")"
cat "$T_DIR/traffic1" "$T_DIR/traffic2" >"$T_DIR/traffic"
N=$(wc -l <"$T_DIR/traffic")
if [ "$N" -ge 10 ]; then ok "traffic during the reloads: $N sessions"; else
	not_ok "traffic during the reloads" "only $N sessions"; fi
assert_match "a session connected across both reloads completed" \
	'^rc=0 mail continue rcpt <a@null-mx.mxs.test> replycode rcpt <b@mx-cname.mxs.test> replycode done' \
	"$(cat "$T_DIR/across")"
assert_eq "no session failed during the reloads" "" \
	"$(grep -v ' rc=0 mail continue .* done $' "$T_DIR/traffic" | head -3)"
assert_eq "the null MX recipient was rejected in every session" "" \
	"$(grep -v 'rcpt <a@null-mx.mxs.test> replycode' "$T_DIR/traffic" | head -3)"
assert_eq "the good recipient was accepted in every session" "" \
	"$(grep -v 'rcpt <c@ok-mx.mxs.test> continue' "$T_DIR/traffic" | head -3)"
for f in traffic1 traffic2; do
	SEQ=$(grep -o 'rcpt <b@mx-cname.mxs.test> [a-z]*' "$T_DIR/$f" | awk '{ print $3 }' | uniq | xargs)
	assert_eq "$f: mx_cname warned before the reload, rejected after, never back" \
		"continue replycode" "$SEQ"
done
# In the decision log: the invalid file changed nothing (still warn after it), the valid one did.
assert_match "after the invalid file the old configuration still decided (warn)" \
	'keeping the configuration in use.*verdict=mx_cname action=warn' "$(tr '\n' ' ' <<<"$LOG")"
assert_match "after the valid file mx_cname is rejected" \
	'configuration reloaded from.*verdict=mx_cname action=reject' "$(tr '\n' ' ' <<<"$LOG")"
assert_eq "the daemon was not restarted" "alive 1" \
	"$(kill -0 "$RPID" && echo alive) $(grep -c ': mxsane-milter .* listening on' <<<"$LOG")"
term "$RPID"
assert_eq "reload instance: clean stop" 0 "$TRC"

for f in "$T_DIR"/*.log; do
	if grep -qE 'Sanitizer|runtime error' "$f"; then
		not_ok "no sanitizer findings in ${f##*/}" "$(grep -m3 -E 'Sanitizer|runtime error' "$f")"
	fi
done
finish

#!/usr/bin/env bash
# 33-policy-daemon.sh - mxsane-policyd as a process:
# -n with good and bad files (0 / 78 with FILE:LINE), -V, usage errors (64),
# -l in Postfix syntax (host names refused), bind failure (69, naming the address), -s spawn
# mode over a pipe and over a socket, SIGTERM with connections open (the request in flight
# answered, clean exit, pid file removed), detaching, reload that changes policy.listen
# (logged: needs a restart), stale unix socket removed, symlink / regular file / live socket
# refused, unix socket mode 0660, privilege drop to nobody:nogroup (checked in /proc), and
# refusing to run as root without -u.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-policyd
POLICYD="$BUILD_DIR/mxsane-policyd"
start_knot || { not_ok "knotd starts" "see the log above"; finish; }
start_faultdns || { not_ok "faultdns starts" "see the log above"; finish; }

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
USER_ARGS=()
[ $IS_ROOT = 1 ] && USER_ARGS=(-u root)

CONF="$T_DIR/mxsane.conf"
cat >"$CONF" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT", "127.0.0.1:$FAULT_PORT" ]; timeout_ms = 1500; };
EOF
REQ_NULL=$'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=alice@ok-mx.mxs.test\nrecipient=bob@null-mx.mxs.test\n\n'
REQ_OK=$'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=alice@ok-mx.mxs.test\nrecipient=bob@ok-mx.mxs.test\n\n'
REQ_SLOW=$'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=alice@ok-mx.mxs.test\nrecipient=bob@timeout.fault.test\n\n'
REPLY_NULL=$'action=556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)\n\n'

# run ARGS...: mxsane-policyd in the foreground, bounded; sets RC, OUT, ERR.
run() {
	timeout -k 2 20 "$POLICYD" "$@" >"$T_DIR/out" 2>"$T_DIR/err" </dev/null
	RC=$?
	OUT=$(cat "$T_DIR/out")
	ERR=$(cat "$T_DIR/err")
}

# ask ADDR REQUEST: send one request, print the reply (up to the empty line).
ask() {
	"$PY" - "$1" "$2" <<'EOF'
import socket, sys
a, req = sys.argv[1], sys.argv[2]
if a.startswith("unix:"):
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(a[5:])
else:
    h, p = a[5:].rsplit(":", 1)
    s = socket.create_connection((h.strip("[]"), int(p)), timeout=10)
s.sendall(req.encode())
data = b""
while not data.endswith(b"\n\n"):
    b = s.recv(4096)
    if not b:
        break
    data += b
sys.stdout.write(data.decode())
EOF
}

# ---- -V, -n, usage ----
run -V
assert_eq "-V exit status" 0 "$RC"
assert_match "-V prints the version" '^mxsane-policyd [0-9]+\.[0-9]+\.[0-9]+$' "$OUT"

run -n -c "$CONF"
assert_eq "-n good file: exit status" 0 "$RC"
assert_eq "-n good file: message" "configuration OK: $CONF" "$OUT"

printf 'resolver = { timeout_ms = 3000; };\n\ncache = { max_entries = -5; };\n' >"$T_DIR/bad.conf"
run -n -c "$T_DIR/bad.conf"
assert_eq "-n bad value: exit status 78" 78 "$RC"
assert_match "-n bad value: FILE:LINE" "$T_DIR/bad.conf:3: " "$ERR"
printf 'resolver = { timeout_ms = 3000 \n' >"$T_DIR/syntax.conf"
run -n -c "$T_DIR/syntax.conf"
assert_eq "-n syntax error: exit status 78" 78 "$RC"
assert_match "-n syntax error: FILE:LINE" "$T_DIR/syntax.conf:[0-9]+: " "$ERR"
printf 'policy = { listen = "inet:localhost:10045"; };\n' >"$T_DIR/listen.conf"
run -n -c "$T_DIR/listen.conf"
assert_eq "-n host name in policy.listen: exit status 78" 78 "$RC"
assert_match "-n host name in policy.listen: clear message" \
	"$T_DIR/listen.conf:1: .policy.listen.: invalid socket \"inet:localhost:10045\"" "$ERR"
run -n -c "$T_DIR/missing.conf"
assert_eq "-n missing file: exit status 78" 78 "$RC"
assert_match "-n missing file names it" "$T_DIR/missing.conf" "$ERR"
if [ ! -e /etc/mxsane/mxsane.conf ]; then
	run -n
	assert_eq "-n without -c and no default file: built-in defaults" \
		"0 configuration OK: built-in defaults, /etc/mxsane/mxsane.conf not found" "$RC $OUT"
fi

run -x
assert_eq "unknown option: 64" 64 "$RC"
run -c "$CONF" extra
assert_eq "extra argument: 64" 64 "$RC"
run -f -c "$CONF" -l inet:localhost:10045 "${USER_ARGS[@]}"
assert_eq "-l inet:localhost:10045: 64" 64 "$RC"
assert_match "-l host name refused with a clear message" \
	'host names are not resolved: write inet:127.0.0.1:10045' "$ERR"
run -f -c "$CONF" -l unix:relative.sock "${USER_ARGS[@]}"
assert_match "-l unix:relative refused" '64 .*must be absolute' "$RC $ERR"
run -f -c "$CONF" -l inet:127.0.0.1:99999 "${USER_ARGS[@]}"
assert_match "-l bad port refused" '64 .*bad port' "$RC $ERR"
run -f -c "$CONF" -P relative.pid "${USER_ARGS[@]}"
assert_eq "-P relative path: 64" 64 "$RC"

# ---- -l forms: inet:[::1]:PORT (when ::1 exists) and HOST:PORT without inet: ----
listen_and_ask() { # LISTEN ASK-ADDR NAME
	local pid i r=
	"$POLICYD" -f -c "$CONF" -l "$1" "${USER_ARGS[@]}" >"$T_DIR/forms.log" 2>&1 &
	pid=$!
	track_pid "$pid"
	for i in $(seq 50); do
		r=$(ask "$2" "$REQ_OK" 2>/dev/null | head -n 1)
		[ -n "$r" ] && break
		sleep 0.1
	done
	assert_eq "$3" "action=DUNNO" "$r"
	grep -qF "listening on $2 " "$T_DIR/forms.log" && ok "$3: logged as $2" ||
		not_ok "$3: listen address logged" "$(head -n 3 "$T_DIR/forms.log")"
	stop_pid "$pid"
}
if "$PY" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	p=$(free_port)
	listen_and_ask "inet:[::1]:$p" "inet:[::1]:$p" "-l inet:[::1]:PORT answers over IPv6"
else
	echo "# no ::1 here: IPv6 listen not tested"
fi
p=$(free_port)
listen_and_ask "127.0.0.1:$p" "inet:127.0.0.1:$p" "-l 127.0.0.1:PORT (inet: implied) answers"

# ---- bind failure: 69 naming the address ----
busy=$(free_port)
"$PY" -c "
import socket, time, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $busy)); s.listen(1); print('up', flush=True); time.sleep(30)" >"$T_DIR/busy.out" &
bpid=$!
track_pid "$bpid"
for _ in $(seq 50); do grep -q up "$T_DIR/busy.out" && break; sleep 0.1; done
run -f -c "$CONF" -l "inet:127.0.0.1:$busy" "${USER_ARGS[@]}"
assert_eq "address in use: exit status 69" 69 "$RC"
assert_match "address in use: message names it" "cannot bind inet:127.0.0.1:$busy: Address already in use" "$ERR"
stop_pid "$bpid"

# ---- -s: one connection on stdin/stdout ----
printf '%s%s' "$REQ_NULL" "$REQ_OK" >"$T_DIR/spawn.in"
cat "$T_DIR/spawn.in" | timeout -k 2 20 "$POLICYD" -s -c "$CONF" "${USER_ARGS[@]}" \
	2>"$T_DIR/spawn.err" | cat >"$T_DIR/spawn.out"
rc=${PIPESTATUS[1]}
assert_eq "-s over a pipe: exit 0 at end of input" 0 "$rc"
assert_eq "-s over a pipe: both replies, in order" "$(printf '%saction=DUNNO\n\n' "$REPLY_NULL" | od -c)" \
	"$(od -c <"$T_DIR/spawn.out")"
# a file on stdin (mxsane-policyd -s < requests): epoll cannot watch files; read all the same
timeout -k 2 20 "$POLICYD" -s -f -c "$CONF" "${USER_ARGS[@]}" <"$T_DIR/spawn.in" \
	>"$T_DIR/spawn-file.out" 2>"$T_DIR/spawn-file.err"
rc=$?
assert_eq "-s from a file: exit 0, both replies" \
	"0 $(printf '%saction=DUNNO\n\n' "$REPLY_NULL" | od -c)" "$rc $(od -c <"$T_DIR/spawn-file.out")"
assert_eq "-s without -f writes nothing to stderr (it is the client's socket under spawn)" "" \
	"$(cat "$T_DIR/spawn.err")"
printf '%s' "$REQ_SLOW" | timeout -k 2 20 "$POLICYD" -s -f -c "$CONF" "${USER_ARGS[@]}" \
	>"$T_DIR/spawn2.out" 2>"$T_DIR/spawn2.err"
rc=$?
assert_eq "-s: a request whose DNS is slow is still answered before exit" "0 action=451 4.4.3" \
	"$rc $(head -c 16 "$T_DIR/spawn2.out")"
printf 'request=smtpd_access_policy\nno equals\n\n%s' "$REQ_OK" |
	timeout -k 2 20 "$POLICYD" -s -f -c "$CONF" "${USER_ARGS[@]}" >"$T_DIR/spawn3.out" 2>"$T_DIR/spawn3.err"
rc=$?
assert_eq "-s malformed: no reply, exit 0" "0 0" "$rc $(wc -c <"$T_DIR/spawn3.out")"
grep -q 'client stdin: malformed request: a line without' "$T_DIR/spawn3.err" &&
	ok "-s malformed: logged" || not_ok "-s malformed logged" "$(cat "$T_DIR/spawn3.err")"
# as spawn(8) runs it: stdin and stdout are one socket; two requests, a pause between them
"$PY" - "$POLICYD" "$CONF" "${USER_ARGS[@]}" >"$T_DIR/spawn4.out" 2>&1 <<EOF
import socket, subprocess, sys, time
a, b = socket.socketpair()
p = subprocess.Popen(sys.argv[1:2] + ["-s", "-f", "-c", sys.argv[2]] + sys.argv[3:],
                     stdin=b.fileno(), stdout=b.fileno(), stderr=open("$T_DIR/spawn4.err", "w"))
b.close()
a.settimeout(10)
def ask(req):
    a.sendall(req.encode())
    d = b""
    while not d.endswith(b"\n\n"):
        d += a.recv(4096)
    return d.decode()
r1 = ask("""$REQ_NULL""")
time.sleep(0.5)
r2 = ask("""$REQ_OK""")
a.close()
rc = p.wait(timeout=10)
print(repr(r1 + r2), rc)
EOF
assert_eq "-s over a socket pair (as spawn): replies, exit 0 when Postfix closes" \
	"$(printf '%s' "'${REPLY_NULL//$'\n'/\\n}action=DUNNO\\n\\n' 0")" "$(cat "$T_DIR/spawn4.out")"

# ---- SIGTERM with connections open: in-flight answered, others closed, pid file removed ----
PORT=$(free_port)
PIDFILE="$T_DIR/policyd.pid"
"$POLICYD" -f -c "$CONF" -l "inet:127.0.0.1:$PORT" -P "$PIDFILE" "${USER_ARGS[@]}" \
	>"$T_DIR/term.log" 2>&1 &
pid=$!
track_pid "$pid"
wait_port "$PORT" || not_ok "daemon for SIGTERM starts" "$(cat "$T_DIR/term.log")"
wait_file "$PIDFILE"
assert_eq "pid file holds the daemon's pid" "$pid" "$(cat "$PIDFILE" 2>/dev/null)"
"$PY" - "$PORT" "$pid" >"$T_DIR/term.out" 2>&1 <<EOF
import os, select, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
idle = socket.create_connection(("127.0.0.1", port), timeout=10)
busy = socket.create_connection(("127.0.0.1", port), timeout=10)
half = socket.create_connection(("127.0.0.1", port), timeout=10)
half.sendall(b"request=smtpd_access_policy\nprotocol_")
busy.sendall(b"""$REQ_SLOW""")
time.sleep(0.3)
t = time.time()
os.kill(pid, signal.SIGTERM)
def closed(s, secs):
    end, data = time.time() + secs, b""
    while time.time() < end:
        if select.select([s], [], [], 0.05)[0]:
            b = s.recv(4096)
            if not b:
                return "closed", data
            data += b
    return "open", data
print("idle", *closed(idle, 1), "%.1f" % (time.time() - t))
print("half", *closed(half, 1))
st, data = closed(busy, 5)
print("busy", st, data[:16], "%.1f" % (time.time() - t))
try:
    socket.create_connection(("127.0.0.1", port), timeout=2)
    print("new accepted")
except OSError:
    print("new refused")
EOF
cat "$T_DIR/term.out"
wait_gone "$pid" && ok "exits after SIGTERM" || not_ok "exits after SIGTERM" "still running"
wait "$pid"
assert_eq "exit status after SIGTERM" 0 "$?"
assert_match "idle connection closed at once" "^idle closed b'' 0\.[0-9]" "$(grep '^idle' "$T_DIR/term.out")"
assert_match "half-received request closed" "^half closed b''" "$(grep '^half' "$T_DIR/term.out")"
assert_match "request in flight answered, then closed" "^busy closed b'action=451 4.4.3' " \
	"$(grep '^busy' "$T_DIR/term.out")"
assert_eq "no new connection after SIGTERM" "new refused" "$(grep '^new' "$T_DIR/term.out")"
[ ! -e "$PIDFILE" ] && ok "pid file removed" || not_ok "pid file removed" "still there"

# ---- detaching (no -f): the parent returns at once, the daemon runs on ----
PORT=$(free_port)
PIDFILE="$T_DIR/detached.pid"
timeout 10 "$POLICYD" -c "$CONF" -l "inet:127.0.0.1:$PORT" -P "$PIDFILE" "${USER_ARGS[@]}" \
	>"$T_DIR/detach.out" 2>&1
rc=$?
assert_eq "detaching: the parent exits 0" 0 "$rc"
wait_file "$PIDFILE"
dpid=$(cat "$PIDFILE" 2>/dev/null)
if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
	track_pid "$dpid"
	ok "detached daemon runs (pid $dpid)"
	assert_eq "detached daemon answers" "action=DUNNO" "$(ask "inet:127.0.0.1:$PORT" "$REQ_OK" | head -n 1)"
	assert_eq "detached daemon: no controlling terminal, own session" "$dpid" \
		"$(ps -o sid= -p "$dpid" | tr -d ' ')"
	kill -TERM "$dpid"
	wait_gone "$dpid" && ok "detached daemon stops on SIGTERM" || not_ok "detached stop" "still running"
	[ ! -e "$PIDFILE" ] && ok "detached daemon removed its pid file" || not_ok "pid file removed" "still there"
else
	not_ok "detached daemon runs" "pid file: '$dpid'"
fi

# ---- unix sockets: stale removed, symlink / file / live socket refused, mode 0660 ----
RUN="$T_DIR/run"
mkdir -p "$RUN"
SOCK="$RUN/policy.sock"
"$PY" -c "import socket; s = socket.socket(socket.AF_UNIX); s.bind('$SOCK')" # left behind: stale
[ -S "$SOCK" ] && ok "stale socket prepared" || not_ok "stale socket prepared" "no socket"
printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = 1500; };\npolicy = { listen = "unix:%s"; };\n' \
	"$KNOT_PORT" "$SOCK" >"$T_DIR/unix.conf"
"$POLICYD" -f -c "$T_DIR/unix.conf" "${USER_ARGS[@]}" >"$T_DIR/unix.log" 2>&1 &
upid=$!
track_pid "$upid"
for _ in $(seq 100); do
	[ "$(ask "unix:$SOCK" "$REQ_OK" 2>/dev/null | head -n 1)" = action=DUNNO ] && break
	sleep 0.1
done
assert_eq "stale socket replaced, policy.listen unix: answers" "action=DUNNO" \
	"$(ask "unix:$SOCK" "$REQ_OK" | head -n 1)"
assert_eq "unix socket mode 0660" 660 "$(stat -c %a "$SOCK")"
grep -q "client unix:pid=[0-9]*,uid=$(id -u)" "$T_DIR/unix.log" || true
# a second instance on the same live socket is refused, the first keeps it
run -f -c "$T_DIR/unix.conf" "${USER_ARGS[@]}"
assert_eq "live socket: second instance exits 69" 69 "$RC"
assert_match "live socket: says another instance runs" 'in use: another instance is running' "$ERR"
assert_eq "the first instance still answers" "action=DUNNO" "$(ask "unix:$SOCK" "$REQ_OK" | head -n 1)"
# reload with another policy.listen: logged as needing a restart, still on the old socket
sed -i "s|unix:$SOCK|unix:$RUN/other.sock|" "$T_DIR/unix.conf"
kill -HUP "$upid"
for _ in $(seq 50); do grep -q 'policy.listen changed' "$T_DIR/unix.log" && break; sleep 0.1; done
grep -q "reload: policy.listen changed to unix:$RUN/other.sock; still listening on unix:$SOCK until mxsane-policyd is restarted" \
	"$T_DIR/unix.log" && ok "listen change on reload: logged as needing a restart" ||
	not_ok "listen change logged" "$(grep reload "$T_DIR/unix.log")"
assert_eq "still answering on the old socket after the reload" "action=DUNNO" \
	"$(ask "unix:$SOCK" "$REQ_OK" | head -n 1)"
kill -TERM "$upid"
wait "$upid"
assert_eq "unix daemon exits 0" 0 "$?"
[ ! -e "$SOCK" ] && ok "own socket removed at exit" || not_ok "socket removed at exit" "still there"

# a symlink where the socket should be: refused, not followed, not removed
echo "precious" >"$RUN/target"
ln -s "$RUN/target" "$RUN/link.sock"
run -f -c "$CONF" -l "unix:$RUN/link.sock" "${USER_ARGS[@]}"
assert_eq "symlink at the socket path: exit 69" 69 "$RC"
assert_match "symlink refused with a clear message" "link.sock exists and is not a socket \(a symbolic link\)" "$ERR"
[ -L "$RUN/link.sock" ] && [ "$(cat "$RUN/target")" = precious ] &&
	ok "symlink and its target left alone" || not_ok "symlink untouched" "changed"
echo "data" >"$RUN/file.sock"
run -f -c "$CONF" -l "unix:$RUN/file.sock" "${USER_ARGS[@]}"
assert_match "regular file at the socket path: refused" "^69 .*not a socket" "$RC $ERR"
assert_eq "regular file left alone" data "$(cat "$RUN/file.sock")"

# ---- root: refuse without -u; drop to nobody:nogroup ----
if [ $IS_ROOT = 1 ] && getent passwd nobody >/dev/null && getent group nogroup >/dev/null; then
	run -f -c "$CONF" -l "inet:127.0.0.1:$(free_port)"
	assert_eq "as root without -u: exit 64" 64 "$RC"
	assert_match "as root without -u: explains" 'refusing to run as root: give -u USER' "$ERR"
	run -s -f -c "$CONF"
	assert_eq "as root without -u in -s mode too: exit 64" 64 "$RC"

	# nobody must reach the pid file and socket directory
	chmod 711 "$T_DIR"
	DROP="$T_DIR/drop"
	mkdir -p "$DROP"
	chown nobody:nogroup "$DROP"
	PORT=$(free_port)
	"$POLICYD" -f -c "$CONF" -l "unix:$DROP/p.sock" -u nobody:nogroup -P "$DROP/p.pid" \
		>"$T_DIR/drop.log" 2>&1 &
	npid=$!
	track_pid "$npid"
	wait_file "$DROP/p.pid"
	for _ in $(seq 50); do [ -S "$DROP/p.sock" ] && break; sleep 0.1; done
	uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' /proc/$npid/status)
	gids=$(awk '/^Gid:/ { print $2, $3, $4, $5 }' /proc/$npid/status)
	groups=$(awk '/^Groups:/ { $1 = ""; print }' /proc/$npid/status | xargs)
	assert_eq "-u nobody:nogroup: real, effective, saved and fs uid" "65534 65534 65534 65534" "$uids"
	assert_eq "-u nobody:nogroup: all gids" "65534 65534 65534 65534" "$gids"
	[ -z "$groups" ] || [ "$groups" = 65534 ] && ok "no supplementary group left (groups: '$groups')" ||
		not_ok "supplementary groups dropped" "$groups"
	assert_eq "socket owned by nobody:nogroup, mode 0660" "nobody nogroup 660" \
		"$(stat -c '%U %G %a' "$DROP/p.sock")"
	assert_eq "pid file written after the drop" nobody "$(stat -c %U "$DROP/p.pid")"
	assert_eq "dropped daemon answers" "action=DUNNO" "$(ask "unix:$DROP/p.sock" "$REQ_OK" | head -n 1)"
	kill -TERM "$npid"
	wait "$npid"
	assert_eq "dropped daemon exits 0" 0 "$?"
	[ ! -e "$DROP/p.pid" ] && [ ! -e "$DROP/p.sock" ] && ok "pid file and socket removed by the dropped daemon" ||
		not_ok "cleanup after drop" "$(ls "$DROP")"
	run -f -c "$CONF" -l "inet:127.0.0.1:$(free_port)" -u no-such-user-mxs
	assert_match "-u unknown user: 64" '^64 .*unknown user' "$RC $ERR"
else
	echo "# not root: privilege tests skipped"
fi
finish

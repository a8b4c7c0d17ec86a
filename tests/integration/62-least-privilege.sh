#!/usr/bin/env bash
# 62-least-privilege.sh - least privilege, the same checks for both daemons
# (mxsane-milter and mxsane-policyd), started as root:
#   - without -u: refused with a clear message, non-zero exit, nothing created;
#   - with -u nobody:nogroup: every thread runs as nobody:nogroup (real, effective, saved and
#     fs ids; supplementary groups only nogroup) with no capabilities left (CapEff, CapPrm
#     and CapAmb 0), checked in /proc/PID/task/*/status, and still answers;
#   - the unix socket is mode 0660 (srw-rw----), owned by the -u user and group, so neither
#     "other" nor another group can connect;
#   - a stale socket is replaced; a symlink at the socket path (to a file elsewhere, or
#     dangling) is refused, neither followed nor removed, its target untouched; a regular file
#     and a directory at the path are refused and left as they were.
# 23-milter-daemon.sh and 33-policy-daemon.sh cover the rest of each daemon's life cycle.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-milter mxsane-policyd
need_cmd miltertest
[ "$(id -u)" = 0 ] || skip "needs root (privilege drop)"
getent passwd nobody >/dev/null && getent group nogroup >/dev/null || skip "no nobody:nogroup"
start_knot || { not_ok "knotd starts" "see the log above"; finish; }

CONF="$T_DIR/mxsane.conf"
echo "resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\" ]; timeout_ms = 2000; };" >"$CONF"
chmod 755 "$T_DIR"
RUN="$T_DIR/run"
install -d -o nobody -g nogroup -m 755 "$RUN"

# cmd DAEMON SOCK: the command line of DAEMON (milter|policyd) in the foreground on unix:SOCK,
# without -u; in CMD.
cmd() {
	case $1 in
	milter) CMD=("$BUILD_DIR/mxsane-milter" -f -c "$CONF" -p "unix:$2") ;;
	policyd) CMD=("$BUILD_DIR/mxsane-policyd" -f -c "$CONF" -l "unix:$2") ;;
	esac
}

# ask DAEMON SOCK: one request; prints the answer to a null MX recipient ("reject" when right).
ask() {
	local out
	case $1 in
	milter)
		out=$(timeout -k 5 30 miltertest -s "$MXS_TOP/tests/milter/session.lua" -D "sock=unix:$2" \
			-D "rcpts=<bob@null-mx.mxs.test>" 2>&1)
		[ "$(grep '^rcpt' <<<"$out")" = "rcpt <bob@null-mx.mxs.test> replycode" ] &&
			echo reject || echo "$out" | tr '\n' ' '
		;;
	policyd)
		out=$("$PY" - "$2" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@ok-mx.mxs.test\n"
          b"recipient=bob@null-mx.mxs.test\n\n")
d = b""
while not d.endswith(b"\n\n"):
    b = s.recv(4096)
    if not b:
        break
    d += b
print(d.decode().strip())
PYEOF
		)
		[[ $out == "action=556 5.1.10 "* ]] && echo reject || echo "$out"
		;;
	esac
}

# run DAEMON SOCK ARGS...: the daemon to completion (bounded); RC, ERR.
run() {
	local d=$1 s=$2
	shift 2
	cmd "$d" "$s"
	timeout -k 2 20 "${CMD[@]}" "$@" </dev/null >"$T_DIR/out" 2>"$T_DIR/err"
	RC=$?
	ERR=$(tr '\n' ' ' <"$T_DIR/err")
}

wait_answer() { # DAEMON SOCK: until it answers (max 10 s)
	local i
	for i in $(seq 50); do
		[ -S "$2" ] && [ "$(ask "$1" "$2" 2>/dev/null)" = reject ] && return 0
		sleep 0.2
	done
	return 1
}

absent() { [ -e "$1" ] || [ -L "$1" ] && echo present || echo absent; }

# term PID: SIGTERM and wait up to 20 s (libmilter notices SIGTERM only within 5 s, more
# under a sanitizer on a busy machine; stop_pid would KILL it after 5 s and leave the socket).
term() {
	local i
	kill -TERM "$1" 2>/dev/null
	for i in $(seq 200); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	stop_pid "$1"
}

for D in milter policyd; do
	SOCK="$RUN/$D.sock"

	# ---- root without -u: refused before anything is created
	run "$D" "$SOCK"
	if [ "$RC" != 0 ] && [ "$RC" != 124 ]; then ok "$D: root without -u refused (exit $RC)"; else
		not_ok "$D: root without -u refused" "exit $RC"; fi
	assert_match "$D: root without -u: the message says why and what to do" \
		'refusing to run as root.*-u USER' "$ERR"
	assert_eq "$D: root without -u: no socket created" absent "$(absent "$SOCK")"

	# ---- -u nobody:nogroup: dropped everywhere, no capabilities, socket 0660 nobody:nogroup
	cmd "$D" "$SOCK"
	start_bg "$D-drop" "${CMD[@]}" -u nobody:nogroup
	PID=$BG_PID
	if wait_answer "$D" "$SOCK"; then
		ok "$D: answers after dropping privileges"
	else
		not_ok "$D: answers after dropping privileges" "$(cat "$T_DIR/$D-drop.log")"
	fi
	ST=$(cat /proc/"$PID"/task/*/status)
	NT=$(ls /proc/"$PID"/task | wc -l)
	assert_eq "$D: Uid real/effective/saved/fs = nobody in all $NT threads" "65534 65534 65534 65534" \
		"$(awk '/^Uid:/ { print $2, $3, $4, $5 }' <<<"$ST" | sort -u)"
	assert_eq "$D: Gid real/effective/saved/fs = nogroup in all threads" "65534 65534 65534 65534" \
		"$(awk '/^Gid:/ { print $2, $3, $4, $5 }' <<<"$ST" | sort -u)"
	assert_eq "$D: supplementary groups: only nogroup (root's groups dropped)" "65534" \
		"$(awk '/^Groups:/ { $1 = ""; print substr($0, 2) }' <<<"$ST" | sort -u | xargs)"
	assert_eq "$D: no capabilities (CapEff, CapPrm, CapAmb 0) in all threads" \
		"CapAmb: 0000000000000000 CapEff: 0000000000000000 CapPrm: 0000000000000000" \
		"$(grep -E '^Cap(Eff|Prm|Amb):' <<<"$ST" | sort -u | xargs)"
	assert_eq "$D: socket srw-rw---- nobody:nogroup" "srw-rw---- nobody:nogroup" \
		"$(stat -c '%A %U:%G' "$SOCK" 2>&1)"
	# "other" cannot connect (a user neither nobody nor in nogroup)
	R=$(setpriv --reuid=1 --regid=1 --clear-groups "$PY" -c "
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('$SOCK'); print('connected')
except PermissionError:
    print('denied')" 2>&1)
	assert_eq "$D: another user (daemon:daemon) cannot connect" denied "$R"
	term "$PID"
	assert_eq "$D: socket removed by the dropped daemon at exit" absent "$(absent "$SOCK")"

	# ---- a stale socket (its process gone) is replaced
	"$PY" -c "import socket; s = socket.socket(socket.AF_UNIX); s.bind('$SOCK')"
	chown nobody:nogroup "$SOCK"
	start_bg "$D-stale" "${CMD[@]}" -u nobody:nogroup
	PID=$BG_PID
	wait_answer "$D" "$SOCK" && ok "$D: stale socket replaced, answers" ||
		not_ok "$D: stale socket replaced" "$(cat "$T_DIR/$D-stale.log")"
	term "$PID"
	rm -f "$SOCK"

	# ---- a symlink at the socket path to a file elsewhere: refused, not followed, not removed
	echo precious >"$T_DIR/$D-target"
	chmod 644 "$T_DIR/$D-target"
	ln -s "$T_DIR/$D-target" "$SOCK"
	run "$D" "$SOCK" -u nobody:nogroup
	assert_match "$D: symlink at the socket path: refused (exit 69)" \
		"^69 .*not a socket \(a symbolic link\)" "$RC $ERR"
	assert_eq "$D: the symlink is left, pointing where it did" "$T_DIR/$D-target" "$(readlink "$SOCK")"
	assert_eq "$D: its target untouched (content, mode, owner)" "precious 644 root" \
		"$(cat "$T_DIR/$D-target") $(stat -c '%a %U' "$T_DIR/$D-target")"
	rm -f "$SOCK"
	# a symlink to a stale socket elsewhere: still not followed (the socket there stays)
	"$PY" -c "import socket; s = socket.socket(socket.AF_UNIX); s.bind('$T_DIR/$D-other.sock')"
	ln -s "$T_DIR/$D-other.sock" "$SOCK"
	run "$D" "$SOCK" -u nobody:nogroup
	assert_eq "$D: symlink to a stale socket elsewhere: refused, both left" "69 link socket" \
		"$RC $([ -L "$SOCK" ] && echo link) $([ -S "$T_DIR/$D-other.sock" ] && echo socket)"
	rm -f "$SOCK"
	# a dangling symlink: refused, nothing created at its target
	ln -s "$T_DIR/$D-nowhere" "$SOCK"
	run "$D" "$SOCK" -u nobody:nogroup
	assert_eq "$D: dangling symlink: refused, nothing created at its target" "69 absent" \
		"$RC $(absent "$T_DIR/$D-nowhere")"
	rm -f "$SOCK"

	# ---- a regular file or a directory at the path: refused and left
	echo data >"$SOCK"
	run "$D" "$SOCK" -u nobody:nogroup
	assert_match "$D: regular file at the socket path: refused" "^69 .*not a socket" "$RC $ERR"
	assert_eq "$D: regular file left as it was" data "$(cat "$SOCK")"
	rm -f "$SOCK"
	mkdir "$SOCK"
	touch "$SOCK/keep"
	run "$D" "$SOCK" -u nobody:nogroup
	assert_eq "$D: directory at the socket path: refused (69), left" "69 keep" "$RC $(ls "$SOCK")"
	rm -rf "$SOCK"
done

for f in "$T_DIR"/*.log "$T_DIR/err"; do
	if grep -qE 'Sanitizer|runtime error' "$f"; then
		not_ok "no sanitizer findings in ${f##*/}" "$(grep -m3 -E 'Sanitizer|runtime error' "$f")"
	fi
done
finish

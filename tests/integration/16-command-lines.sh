#!/usr/bin/env bash
# 16-command-lines.sh - the programs' command lines as an admin meets them: --help and -h print
# the usage and exit 0 (--version too); the configuration is chosen by one rule in all three
# (-c FILE, else the default file, else built-in defaults with a warning; an existing file that
# cannot be read is an error, exit 78); -n says when it checked the built-in defaults because
# the default file is missing; signals a daemon has no use for (SIGUSR2, SIGALRM, SIGPWR, ...)
# do not stop it; the start line says enforce or monitor.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-check mxsane-milter mxsane-policyd
start_faultdns || { not_ok "faultdns.py starts" "see the log above"; finish; }
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)
DEFAULT_CONF=/etc/mxsane/mxsane.conf

# ---- --help, -h, --version ------------------------------------------------------------------
for p in mxsane-check mxsane-milter mxsane-policyd; do
	for opt in --help -h; do
		out=$("$BUILD_DIR/$p" "$opt" 2>"$T_DIR/err")
		rc=$?
		assert_eq "$p $opt: exit 0" 0 "$rc"
		assert_match "$p $opt: usage on standard output" "^usage: $p" "$out"
	done
	out=$("$BUILD_DIR/$p" --version 2>&1)
	assert_match "$p --version" "^$p [0-9]" "$out"
	"$BUILD_DIR/$p" --no-such-option >/dev/null 2>&1
	assert_eq "$p --no-such-option: exit 64" 64 "$?"
done

# ---- which configuration ---------------------------------------------------------------------
mkdir "$T_DIR/a-directory"
for p in mxsane-milter mxsane-policyd; do
	"$BUILD_DIR/$p" -n -c "$T_DIR/a-directory" >/dev/null 2>"$T_DIR/err"
	assert_eq "$p -n -c DIRECTORY: a file that cannot be read is an error (78)" 78 "$?"
	assert_match "$p: the message names it" "a-directory" "$(cat "$T_DIR/err")"
done
"$BUILD_DIR/mxsane-check" -c "$T_DIR/a-directory" -j ok.fault.test >/dev/null 2>"$T_DIR/err"
assert_eq "mxsane-check -c DIRECTORY: 78" 78 "$?"
if [ -e "$DEFAULT_CONF" ]; then
	echo "# $DEFAULT_CONF exists on this machine: the built-in defaults cases are not run"
else
	for p in mxsane-milter mxsane-policyd; do
		out=$("$BUILD_DIR/$p" -n 2>"$T_DIR/err")
		assert_eq "$p -n without a configuration file: exit 0" 0 "$?"
		assert_eq "$p -n: says the built-in defaults were checked, and why" \
			"configuration OK: built-in defaults, $DEFAULT_CONF not found" "$out"
		assert_match "$p -n: a warning on standard error" "warning: $DEFAULT_CONF does not exist" \
			"$(cat "$T_DIR/err")"
	done
	"$BUILD_DIR/mxsane-check" -s "127.0.0.1:$FAULT_PORT" -j ok.fault.test >"$T_DIR/out" 2>"$T_DIR/err"
	assert_eq "mxsane-check without a configuration file: checks (ok)" ok "$(json_get "$(cat "$T_DIR/out")" verdict)"
	assert_match "mxsane-check without a configuration file: a warning" \
		"warning: $DEFAULT_CONF does not exist: built-in defaults" "$(cat "$T_DIR/err")"
fi

# ---- daemons: start line, stray signals --------------------------------------------------------
printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = 1500; };\n' "$FAULT_PORT" >"$T_DIR/enforce.conf"
printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = 1500; };\nmode = "monitor";\n' \
	"$FAULT_PORT" >"$T_DIR/monitor.conf"

start_on_free_port policyd "$BUILD_DIR/mxsane-policyd" -f -c "$T_DIR/enforce.conf" \
	-l "inet:127.0.0.1:{PORT}" "${USER_ARGS[@]}" || { not_ok "mxsane-policyd starts" "see above"; finish; }
PD=$BG_PID PD_PORT=$BG_PORT
start_on_free_port milter "$BUILD_DIR/mxsane-milter" -f "${USER_ARGS[@]}" -c "$T_DIR/enforce.conf" \
	-p "inet:{PORT}@127.0.0.1" || { not_ok "mxsane-milter starts" "see above"; finish; }
MP=$BG_PID
start_on_free_port milter-m "$BUILD_DIR/mxsane-milter" -f "${USER_ARGS[@]}" -c "$T_DIR/monitor.conf" \
	-p "inet:{PORT}@127.0.0.1" || { not_ok "mxsane-milter (monitor) starts" "see above"; finish; }
assert_match "mxsane-milter start line: mode enforce" "listening on .*, mode enforce," "$(cat "$T_DIR/milter.log")"
assert_match "mxsane-milter start line: mode monitor" "listening on .*, mode monitor," "$(cat "$T_DIR/milter-m.log")"
assert_match "mxsane-policyd start line: mode enforce" "listening on .*mode enforce" "$(cat "$T_DIR/policyd.log")"

for sig in USR2 ALRM VTALRM PROF IO PWR; do
	kill -s "$sig" "$PD" "$MP"
done
sleep 1
kill -0 "$PD" 2>/dev/null && ok "mxsane-policyd survives SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR" ||
	not_ok "mxsane-policyd survives stray signals" "$(tail -3 "$T_DIR/policyd.log")"
kill -0 "$MP" 2>/dev/null && ok "mxsane-milter survives SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR" ||
	not_ok "mxsane-milter survives stray signals" "$(tail -3 "$T_DIR/milter.log")"
# and the policy service still answers
rep=$(printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=\nrecipient=x@ok.fault.test\n\n' |
	timeout 10 "$PY" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
s.sendall(sys.stdin.buffer.read())
buf = b""
while b"\n\n" not in buf:
    d = s.recv(4096)
    if not d:
        break
    buf += d
print(buf.decode().split("\n")[0])' "$PD_PORT")
assert_eq "mxsane-policyd answers after the stray signals" "action=DUNNO" "$rep"
finish

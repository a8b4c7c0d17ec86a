#!/usr/bin/env bash
# 63-milter-macro-packets.sh - one malformed macro packet must not take the milter down.
# libmilter 8.17 stores a macro packet (SMFIC_MACRO) with an odd number of strings or an
# unterminated last string as it is, and smfi_getsymval() then reads past the end of its
# array (docs/robustness.md); the worker process that runs into it may die, and the process
# the admin started must go on serving.  Checked here:
#   - the Debian unit's restart settings can never hit systemd's start limit;
#   - an inet socket on a non-loopback address (or on every address) is warned about at
#     start, loopback and unix sockets are not;
#   - a worker killed by SIGSEGV is replaced at once, the process started stays;
#   - behind a real Postfix (milter_default_action = tempfail) on a unix socket: ordinary
#     sessions, then every form of the malformed packet (odd count, a name without value,
#     an unterminated value; in the CONNECT and in the MAIL macros) ROUNDS x 10 times each,
#     with ordinary sessions between; the started process never stops, every dead worker is
#     replaced, and afterwards well-behaved sessions straight and through Postfix are
#     answered;
#   - a Postfix session in progress on a worker that dies gets 4xx from Postfix, and the
#     next session is answered;
#   - SIGTERM still stops everything (exit 0, socket removed, no worker left); SIGKILL of
#     the started process takes its worker along.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

need_bin mxsane-milter
MILTER="$BUILD_DIR/mxsane-milter"
# In the sanitizer build (make check SANITIZE=1) AddressSanitizer catches the SIGSEGV itself
# and would end the worker with exit status 1; abort_on_error makes it end by a signal, as the
# crash ends a worker of the ordinary build, which is what the supervisor is tested on.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=1"
CRASH_SIGNAL=11 # SIGSEGV; SIGABRT (6) from AddressSanitizer's report in the sanitizer build
nm "$MILTER" 2>/dev/null | grep -q __asan_init && CRASH_SIGNAL=6
RAW="$MXS_TOP/tests/milter/rawmilter.py"
UNIT="$MXS_TOP/packaging/debian/mxsane.mxsane-milter.service"
ROUNDS=${ROUNDS:-5}
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)

# ---- systemd: RestartSec x StartLimitBurst must exceed StartLimitIntervalSec (both units)
unit_val() { sed -n "s/^$2=\([0-9]*\)s\?$/\1/p" "$1"; }
for UNIT_FILE in "$UNIT" "$MXS_TOP/packaging/debian/mxsane.mxsane-policyd.service"; do
	u=${UNIT_FILE##*.mxsane-}
	RS=$(unit_val "$UNIT_FILE" RestartSec) SLI=$(unit_val "$UNIT_FILE" StartLimitIntervalSec)
	SLB=$(unit_val "$UNIT_FILE" StartLimitBurst)
	if [ -n "$RS" ] && [ -n "$SLI" ] && [ -n "$SLB" ] && [ $((RS * SLB)) -gt "$SLI" ]; then
		ok "$u: RestartSec=${RS}s x StartLimitBurst=$SLB > StartLimitIntervalSec=${SLI}s"
	else
		not_ok "$u: restarts cannot hit the start limit" "RestartSec='$RS' burst='$SLB' interval='$SLI'"
	fi
done

start_knot || { not_ok "knotd starts" "see the log above"; finish; }
CONF="$T_DIR/mxsane.conf"
echo "resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\" ]; timeout_ms = 2000; };" >"$CONF"

# ---- the warning about sockets other machines can reach
# exposed NAME SPEC EXPECT: start on SPEC ({PORT} replaced), stop, check the warning
exposed() {
	local name=$1 spec=$2 expect=$3 got=no
	start_on_free_port "$name" "$MILTER" -f "${USER_ARGS[@]}" -c "$CONF" -p "$spec" ||
		{ not_ok "$name: starts" "$(cat "$T_DIR/$name.log")"; return; }
	stop_pid "$BG_PID"
	grep -q 'WARNING: socket .* accepts connections from other machines' "$T_DIR/$name.log" &&
		got=yes
	assert_eq "$name: warned at start: $expect" "$expect" "$got"
}
exposed any-address "inet:{PORT}" yes
exposed wildcard "inet:{PORT}@0.0.0.0" yes
exposed loopback "inet:{PORT}@127.0.0.1" no
exposed loopback-name "inet:{PORT}@localhost" no

# workers PID: the worker processes of supervisor PID
workers() { pgrep -P "$1" | tr '\n' ' ' | sed 's/ $//'; }
# wait_worker PID OLD: until PID has a worker other than OLD (max 5 s); prints it
wait_worker() {
	local w i
	for i in $(seq 50); do
		w=$(workers "$1")
		if [ -n "$w" ] && [ "$w" != "$2" ]; then
			echo "$w"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# ---- a worker killed by a signal is replaced; the process started stays
start_on_free_port sv "$MILTER" -f "${USER_ARGS[@]}" -c "$CONF" -p "inet:{PORT}@127.0.0.1" ||
	{ not_ok "mxsane-milter starts" "$(cat "$T_DIR/sv.log")"; finish; }
SPORT=$BG_PORT SPID=$BG_PID
W1=$(wait_worker "$SPID" "") || not_ok "a worker process runs" "none under $SPID"
kill -SEGV "$W1"
W2=$(wait_worker "$SPID" "$W1")
assert_match "SIGSEGV of worker $W1: a new worker runs" '^[0-9]+$' "$W2"
assert_eq "SIGSEGV: the process started is still running" yes \
	"$(kill -0 "$SPID" 2>/dev/null && echo yes)"
assert_match "SIGSEGV: logged" "worker process $W1 killed by signal $CRASH_SIGNAL .*starting a new one" \
	"$(cat "$T_DIR/sv.log")"
assert_eq "SIGSEGV: the new worker answers" "answered continue continue" \
	"$("$PY" "$RAW" "inet:$SPORT@127.0.0.1" normal M 1)"
kill -KILL "$SPID"
wait "$SPID" 2>/dev/null
for _ in $(seq 50); do kill -0 "$W2" 2>/dev/null || break; sleep 0.1; done
assert_eq "SIGKILL of the process started: its worker goes too" gone \
	"$(kill -0 "$W2" 2>/dev/null && echo running || echo gone)"

# ---- behind a real Postfix, on a unix socket as the default set-up has it
start_postfix "smtpd_milters = unix:/var/spool/postfix/mxsane/milter.sock" \
	"milter_default_action = tempfail" "milter_protocol = 6" ||
	{ not_ok "postfix starts" "see above"; finish; }
SOCKDIR="$POSTFIX_DIR/spool/mxsane"
chmod o+x "$T_DIR" "$POSTFIX_DIR"
install -d -o nobody -g postfix -m 750 "$SOCKDIR"
SOCK="unix:$SOCKDIR/milter.sock"
start_bg milter "$MILTER" -f -u nobody:postfix -c "$CONF" -p "$SOCK"
MPID=$BG_PID
wait_file "$SOCKDIR/milter.sock" 5
assert_eq "unix socket: mode 0660, nobody:postfix" "660 nobody:postfix" \
	"$(stat -c '%a %U:%G' "$SOCKDIR/milter.sock" 2>&1)"

# postfix_ok NAME: a well-behaved session through Postfix is answered by the milter
postfix_ok() {
	local tr
	tr=$(smtp_send s@ok-mx.mxs.test bob@null-mx.mxs.test alice@ok-mx.mxs.test)
	assert_eq "$1: Postfix session: null MX recipient refused by the milter" \
		"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
		"$(smtp_reply "$tr" RCPT bob@null-mx.mxs.test)"
	assert_match "$1: Postfix session: message accepted" '^250 2\.0\.0 Ok: queued as ' \
		"$(smtp_reply "$tr" DATA)"
}
postfix_ok "before"
NORMAL=$("$PY" "$RAW" "$SOCK" normal M 20 | sort | uniq -c | sed 's/^ *//')
assert_eq "20 ordinary sessions answered" "20 answered continue continue" "$NORMAL"

SENT=0 STRAYS=()
for round in $(seq "$ROUNDS"); do
	for form in odd novalue unterminated; do
		for stage in C M; do
			OUT=$("$PY" "$RAW" "$SOCK" "$form" "$stage" 10)
			SENT=$((SENT + 10))
			# "answered" (the lookups happened to read a NULL) or "dropped" (the worker
			# died): never anything else, never a hang (rawmilter times out after 30 s)
			bad=$(grep -v -E '^(answered continue continue|dropped (mail|rcpt))$' <<<"$OUT" |
				head -1)
			[ -z "$bad" ] || STRAYS+=("$form/$stage: $bad")
			if ! kill -0 "$MPID" 2>/dev/null; then
				not_ok "round $round $form/$stage: the process started still runs" \
					"$(tail -5 "$T_DIR/milter.log")"
				finish
			fi
		done
	done
	o=$("$PY" "$RAW" "$SOCK" normal M 2 | sort -u)
	[ "$o" = "answered continue continue" ] || STRAYS+=("normal after round $round: $o")
done
CRASHES=$(grep -c 'killed by signal' "$T_DIR/milter.log")
STARTS=$(grep -c 'worker process [0-9]* started (restart' "$T_DIR/milter.log")
echo "# $SENT malformed macro packets: $CRASHES worker crashes, $STARTS workers started anew"
assert_eq "$SENT malformed packets: the process started never stopped" yes \
	"$(kill -0 "$MPID" 2>/dev/null && echo yes)"
assert_eq "$SENT malformed packets: every session answered or dropped, ordinary ones answered" \
	"" "${STRAYS[*]:-}"
W=$(wait_worker "$MPID" "")
assert_eq "every dead worker was replaced ($CRASHES)" "$CRASHES" "$STARTS"
assert_eq "after them: an ordinary session straight to the milter is answered" \
	"answered continue continue" "$("$PY" "$RAW" "$SOCK" normal M 1)"
postfix_ok "after $SENT malformed packets"

# ---- a Postfix session in progress when its worker dies: 4xx from Postfix, nothing lost
W=$(wait_worker "$MPID" "")
R=$("$PY" - "$POSTFIX_PORT" "$W" <<'EOF'
import os, signal, smtplib, sys, time
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.ehlo("client.test")
print(s.mail("s@ok-mx.mxs.test")[0])
os.kill(int(sys.argv[2]), signal.SIGSEGV)
time.sleep(0.5)
print(s.rcpt("bob@ok-mx.mxs.test")[0])
s.quit()
EOF
)
assert_eq "worker killed mid-session: MAIL accepted before, RCPT tempfailed (4xx) after" \
	"250 4" "$(echo $R | sed 's/^\(250\) \(4\)[0-9][0-9]$/\1 \2/')"
wait_worker "$MPID" "$W" >/dev/null
postfix_ok "the next session"

# ---- SIGTERM still stops everything
W=$(workers "$MPID")
kill -TERM "$MPID"
for _ in $(seq 100); do kill -0 "$MPID" 2>/dev/null || break; sleep 0.1; done
wait "$MPID"
assert_eq "SIGTERM: exit status 0" 0 "$?"
assert_eq "SIGTERM: the worker is gone" gone "$(kill -0 "$W" 2>/dev/null && echo running || echo gone)"
assert_eq "SIGTERM: socket removed" gone \
	"$([ -e "$SOCKDIR/milter.sock" ] && echo present || echo gone)"
stop_postfix
if [ "$_T_FAIL" -gt 0 ]; then
	echo "---- milter log"; grep -v 'verdict=' "$T_DIR/milter.log" | tail -n 40
fi
finish

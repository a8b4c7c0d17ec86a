#!/usr/bin/env bash
# 25-milter-local-sendmail.sh - Sendmail's ways of submitting mail on the machine, through a
# real Sendmail 8.17 (tests/lib/sendmail.sh) with the real mxsane-milter and knotd behind it:
#  - `sendmail -bs` on a pipe (client address 0, port 0, no daemon macros) is local: its
#    sender is skipped with the reason, a null-MX recipient is refused at DATA;
#  - the MSP (submit.cf, Debian's sendmail(8)) relays by SMTP to the daemon on 127.0.0.1, like
#    any other SMTP client on loopback: its sender is checked (451 4.4.3 for an internal name,
#    the message waits in the MSP's queue) and a null-MX recipient is refused at RCPT;
#  - `sendmail -Am` (the MTA's own command line) passes through no milter at all.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/sendmail.sh"

need_bin mxsane-milter
MILTER="$BUILD_DIR/mxsane-milter"

start_knot || { not_ok "knotd starts" "see the log above"; finish; }
CONF="$T_DIR/mxsane.conf"
cat >"$CONF" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
cache = { error_ttl = 0; };
EOF
start_on_free_port milter "$MILTER" -f -u nobody:nogroup -c "$CONF" -p "inet:{PORT}@127.0.0.1" ||
	{ not_ok "mxsane-milter starts" "$(cat "$T_DIR/milter.log")"; finish; }
MPORT=$BG_PORT
start_sendmail "inet:$MPORT@127.0.0.1" || { not_ok "sendmail starts" "see above"; finish; }
sendmail_msp_cf || { not_ok "submit.cf builds" "see above"; finish; }
ok "sendmail starts with the milter; submit.cf relays to 127.0.0.1:$SENDMAIL_PORT"

mlog() { grep -F -- "$1" "$T_DIR/milter.log"; }
msg() { printf 'Subject: local submission\n\nfrom cron\n'; }

# bs FROM TO...: one session with `sendmail -bs` (SMTP on stdin/stdout, as some MUAs submit),
# one command at a time (Sendmail refuses a client that talks before the greeting); prints
# one line per command: "MAIL 250 2.1.0 ...", "RCPT addr 250 ...", "DATA 556 ..." (the reply
# to DATA when not 354, else the one after the message)
bs() {
	local from=$1 to line
	shift
	coproc BS { sendmail_cmd -C "$SENDMAIL_CF" -bs 2>&1; }
	say() { # CMD LABEL: send CMD, print LABEL and the (last line of the) reply
		[ -n "$1" ] && printf '%s\r\n' "$1" >&"${BS[1]}"
		while IFS= read -t 15 -r line <&"${BS[0]}"; do
			line=${line%$'\r'}
			[[ $line == [0-9][0-9][0-9]-* ]] && continue
			echo "$2 $line"
			REPLY_CODE=${line:0:3}
			return 0
		done
		echo "$2 <no reply>"
		REPLY_CODE=
	}
	say "" CONNECT
	say "HELO localhost" HELO
	say "MAIL FROM:<$from>" MAIL
	for to in "$@"; do
		say "RCPT TO:<$to>" "RCPT $to"
	done
	say "DATA" DATA
	if [ "$REPLY_CODE" = 354 ]; then
		msg | sed 's/$/\r/' >&"${BS[1]}"
		say "." DATA
	fi
	say "QUIT" QUIT
	wait "$BS_PID" 2>/dev/null
}
# the last reply for a command (DATA: the one after the message when there was a 354)
bs_reply() {
	awk -v k="$2" 'index($0, k " ") == 1 { r = substr($0, length(k) + 2) } END { print r }' <<<"$1"
}

# ---- sendmail -bs: local (client address "0", client port 0, no daemon macros)
TR=$(bs root@host.internal.invalid bob@ok-mx.mxs.test)
assert_match "-bs: the internal sender is accepted" '^250 ' "$(bs_reply "$TR" MAIL)"
assert_match "-bs: the message is queued" '^250 2\.0\.0 [0-9A-Za-z]+ Message accepted' \
	"$(bs_reply "$TR" DATA)"
assert_match "-bs: the sender is logged as skipped, with the reason" \
	'verdict=skipped action=accept role=sender .*reason="locally submitted mail \(sender not checked: checks\.local_sender = false\)"' \
	"$(mlog 'sender=<root@host.internal.invalid>' | head -n 1)"
assert_match "-bs: the recipient is checked" \
	'verdict=ok action=accept role=recipient domain=ok-mx\.mxs\.test ' \
	"$(mlog 'recipient=<bob@ok-mx.mxs.test>' | head -n 1)"

TR=$(bs root@host.internal.invalid bob@null-mx.mxs.test)
assert_match "-bs: a null MX recipient is held at RCPT" '^250 ' \
	"$(bs_reply "$TR" "RCPT bob@null-mx.mxs.test")"
assert_eq "-bs: ... and the message refused at DATA" \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(bs_reply "$TR" DATA)"

# ---- the MSP: an SMTP client on 127.0.0.1 like any other, checked as such
before=$(wc -l <"$T_DIR/milter.log")
msg | sendmail_cmd -C "$SENDMAIL_SUBMIT_CF" -f root@msp.internal.invalid bob@ok-mx.mxs.test
NEW=$(tail -n +"$((before + 1))" "$T_DIR/milter.log")
assert_match "MSP: the sender is checked (dns_error, 451 4.4.3), client 127.0.0.1" \
	'verdict=dns_error action=tempfail role=sender domain=msp\.internal\.invalid reply="451 4\.4\.3" .*client_addr=127\.0\.0\.1 ' \
	"$NEW"
assert_eq "MSP: not taken as locally submitted" "" "$(grep 'locally submitted' <<<"$NEW")"
assert_match "MSP: the MTA answered it 451 4.4.3 at MAIL" \
	'>>> 451 4\.4\.3 <root@msp\.internal\.invalid>' "$(cat "$SENDMAIL_DIR/traffic.log")"
assert_eq "MSP: the message waits in the MSP's queue" 1 \
	"$(find "$SENDMAIL_DIR/clientmqueue" -name 'qf*' | wc -l)"

before=$(wc -l <"$T_DIR/milter.log")
msg | sendmail_cmd -C "$SENDMAIL_SUBMIT_CF" -f s@ok-mx.mxs.test bob@null-mx.mxs.test
NEW=$(tail -n +"$((before + 1))" "$T_DIR/milter.log")
assert_match "MSP: a null MX recipient is refused at RCPT" \
	'>>> 556 5\.1\.10 <bob@null-mx\.mxs\.test>: null-mx\.mxs\.test does not accept mail \(null MX\)' \
	"$(cat "$SENDMAIL_DIR/traffic.log")"
assert_eq "MSP: no refusal held for DATA" "" "$(grep 'held for DATA' <<<"$NEW")"

# ---- sendmail -Am: the MTA's own command line calls no milter
before=$(wc -l <"$T_DIR/milter.log")
nq=$(sendmail_queue | wc -l)
msg | sendmail_cmd -C "$SENDMAIL_CF" -Am -f root@host.internal.invalid bob@null-mx.mxs.test
assert_eq "-Am: queued by the MTA" $((nq + 1)) "$(sendmail_queue | wc -l)"
sleep 0.3
assert_eq "-Am: the milter is not asked" "$before" "$(wc -l <"$T_DIR/milter.log")"

stop_sendmail
if grep -qE 'Sanitizer|runtime error' "$T_DIR/milter.log"; then
	not_ok "no sanitizer findings" "$(grep -m3 -E 'Sanitizer|runtime error' "$T_DIR/milter.log")"
fi
if [ "$_T_FAIL" -gt 0 ]; then
	echo "---- milter log"; cat "$T_DIR/milter.log"
	echo "---- sendmail traffic"; tail -n 60 "$SENDMAIL_DIR/traffic.log" 2>/dev/null
fi
finish

#!/usr/bin/env bash
# 21-milter-postfix.sh - end to end through a real Postfix 3.7 (tests/lib/postfix.sh: an
# isolated instance with its own config and spool) with smtpd_milters pointing at the real
# mxsane-milter, knotd and faultdns behind it, and swaks as the SMTP client: the exact reply
# lines a client gets for null MX sender and recipient, nxdomain, broken MX, a DNS timeout
# (tempfail, within the budget), ok; one bad and one good recipient; the X-MXSane header on
# an accepted message (seen by milter_header_checks); the queue ID in the milter's log line;
# and the same through a unix socket under the spool, owned by the milter's user and the
# postfix group (mode 0660), as Debian's chrooted smtpd needs it.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

need_bin mxsane-milter
MILTER="$BUILD_DIR/mxsane-milter"
BUDGET=2000

start_knot || { not_ok "knotd starts" "see the log above"; finish; }
start_faultdns || { not_ok "faultdns starts" "see the log above"; finish; }

CONF="$T_DIR/mxsane.conf"
cat >"$CONF" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT", "127.0.0.1:$FAULT_PORT" ];
             timeout_ms = $BUDGET; };
cache = { error_ttl = 0; };
EOF

start_on_free_port milter "$MILTER" -f -u nobody:nogroup -c "$CONF" -p "inet:{PORT}@127.0.0.1" ||
	{ not_ok "mxsane-milter starts" "$(cat "$T_DIR/milter.log")"; finish; }
MPORT=$BG_PORT MPID=$BG_PID

# milter_header_checks: a message to which the milter adds X-MXSane is put on hold instead
# of being discarded, so the test can read the header as Postfix stored it (postcat).
HC="$T_DIR/milter_header_checks"
echo '/^X-MXSane:/ HOLD' >"$HC"
start_postfix "smtpd_milters = inet:127.0.0.1:$MPORT" "milter_default_action = accept" \
	"milter_protocol = 6" "milter_header_checks = regexp:$HC" ||
	{ not_ok "postfix starts" "see above"; finish; }
ok "postfix starts with smtpd_milters = inet:127.0.0.1:$MPORT"

# send FROM TO...: one SMTP session; sets TR (transcript), MS (elapsed)
send() {
	local t0
	t0=$(now_ms)
	TR=$(smtp_send "$@")
	MS=$(($(now_ms) - t0))
}
reply() { # STAGE [ADDR]
	smtp_reply "$TR" "$@" || echo "<no $* reply in the transcript>"
}

# ---- sender at MAIL FROM (milter_default_action = accept above: a reply here can only come
# from mxsane-milter, not from Postfix giving up on it)
send s@null-mx.mxs.test bob@ok-mx.mxs.test
assert_eq "null MX sender: 550 5.7.27 at MAIL FROM" \
	"550 5.7.27 <s@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply MAIL)"
send s@nonexistent.mxs.test bob@ok-mx.mxs.test
assert_eq "nxdomain sender: 550 5.1.8" \
	"550 5.1.8 <s@nonexistent.mxs.test>: nonexistent.mxs.test does not exist" "$(reply MAIL)"
send s@mx-target-nx.mxs.test bob@ok-mx.mxs.test
assert_eq "broken MX sender: 450 4.1.8" \
	"450 4.1.8 <s@mx-target-nx.mxs.test>: mx-target-nx.mxs.test has no usable mail server (nowhere.mxs.test does not exist (NXDOMAIN))" \
	"$(reply MAIL)"

# ---- recipients at RCPT TO
send s@ok-mx.mxs.test bob@null-mx.mxs.test
assert_eq "null MX recipient: 556 5.1.10 (not remapped by Postfix)" \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT bob@null-mx.mxs.test)"
send s@ok-mx.mxs.test bob@nonexistent.mxs.test
assert_eq "nxdomain recipient: 550 5.1.2" \
	"550 5.1.2 <bob@nonexistent.mxs.test>: nonexistent.mxs.test does not exist" \
	"$(reply RCPT bob@nonexistent.mxs.test)"
send s@ok-mx.mxs.test bob@mx-target-nx.mxs.test
assert_eq "broken MX recipient: 450 4.4.4" \
	"450 4.4.4 <bob@mx-target-nx.mxs.test>: mx-target-nx.mxs.test has no usable mail server (nowhere.mxs.test does not exist (NXDOMAIN))" \
	"$(reply RCPT bob@mx-target-nx.mxs.test)"

send s@ok-mx.mxs.test bob@timeout.fault.test
assert_eq "DNS timeout recipient: 451 4.4.3 tempfail" \
	"451 4.4.3 <bob@timeout.fault.test>: temporary DNS failure for timeout.fault.test (no answer for the MX lookup of timeout.fault.test within $BUDGET ms)" \
	"$(reply RCPT bob@timeout.fault.test)"
# The whole session (connect, EHLO, MAIL, RCPT, QUIT) within the budget plus a margin.
if [ "$MS" -ge $((BUDGET - 200)) ] && [ "$MS" -lt $((BUDGET + 2000)) ]; then
	ok "DNS timeout: answered within the budget ($MS ms for $BUDGET ms)"
else
	not_ok "DNS timeout: answered within the budget" "$MS ms for $BUDGET ms"
fi

# (in a sender: Postfix itself refuses a % in a recipient as source routing)
send "100%_sure@null-mx.mxs.test" bob@ok-mx.mxs.test
assert_eq "a % in the address reaches the client once (the milter's %% undone by Postfix)" \
	"550 5.7.27 <100%_sure@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply MAIL)"

# ---- ok, per recipient, queue ID: first recipient null MX (rejected), then two good ones.
# Postfix assigns the queue ID after the first accepted RCPT, so the milter's line for the
# second good recipient carries it.
send s@ok-mx.mxs.test bob@null-mx.mxs.test alice@ok-mx.mxs.test carol@implicit-a.mxs.test
assert_eq "per recipient: the null MX recipient is rejected" \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT bob@null-mx.mxs.test)"
assert_eq "ok recipient: 250" "250 2.1.5 Ok" "$(reply RCPT alice@ok-mx.mxs.test)"
assert_eq "ok recipient (implicit MX): 250" "250 2.1.5 Ok" "$(reply RCPT carol@implicit-a.mxs.test)"
DATA=$(reply DATA)
assert_match "the message is queued for the good recipients" '^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$' \
	"$DATA"
QID=${DATA##* }
sleep 0.3
assert_match "the milter's log line for the accepted recipient has the queue ID" \
	"queue_id=$QID verdict=ok action=accept role=recipient domain=implicit-a\.mxs\.test .*client_addr=127\.0\.0\.1 .*helo=client\.mxs-harness\.test sender=<s@ok-mx\.mxs\.test> recipient=<carol@implicit-a\.mxs\.test>" \
	"$(grep 'recipient=<carol@implicit-a.mxs.test>' "$T_DIR/milter.log")"

# ---- warn: accepted, X-MXSane header added to the message
send s@ok-mx.mxs.test bob@mx-cname.mxs.test
assert_match "mx_cname recipient: accepted and queued" '^250 2\.0\.0 Ok: queued as ' \
	"$(reply DATA)"
QID=$(reply DATA)
QID=${QID##* }
postfix_wait_log "$QID: milter-header-hold: header X-MXSane:" 5 >/dev/null
assert_eq "mx_cname: the message carries the X-MXSane header" \
	"X-MXSane: mx_cname mx-cname.mxs.test (MX target alias-host.mxs.test is an alias)" \
	"$(postfix_exec postcat -h -q "$QID" 2>&1 | grep '^X-MXSane:')"
assert_eq "mx_cname: exactly one X-MXSane header" 1 \
	"$(postfix_exec postcat -h -q "$QID" 2>&1 | grep -c '^X-MXSane:')"

# ---- unix socket under the spool: 0660, owned by the milter's user and the postfix group
# (Postfix first: start_postfix makes a fresh spool)
start_postfix "smtpd_milters = unix:/var/spool/postfix/mxsane/milter.sock" \
	"milter_default_action = accept" "milter_protocol = 6" ||
	{ not_ok "postfix starts with the unix socket" "see above"; finish; }
SOCKDIR="$POSTFIX_DIR/spool/mxsane"
# The milter, after dropping to nobody, must reach the directory to remove its socket on exit
# (as on Debian, where /var/spool/postfix is world-searchable).
chmod o+x "$T_DIR" "$POSTFIX_DIR"
install -d -o nobody -g postfix -m 750 "$SOCKDIR"
start_bg milter-unix "$MILTER" -f -u nobody:postfix -c "$CONF" -p "unix:$SOCKDIR/milter.sock"
UPID=$BG_PID
for i in $(seq 50); do
	[ -S "$SOCKDIR/milter.sock" ] && break
	sleep 0.1
done
assert_eq "unix socket: mode 0660, nobody:postfix" "660 nobody:postfix" \
	"$(stat -c '%a %U:%G' "$SOCKDIR/milter.sock" 2>&1)"
send s@ok-mx.mxs.test bob@null-mx.mxs.test alice@ok-mx.mxs.test
assert_eq "unix socket: Postfix (group postfix) reaches the milter: 556 5.1.10" \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT bob@null-mx.mxs.test)"
assert_eq "unix socket: good recipient accepted" "250 2.1.5 Ok" "$(reply RCPT alice@ok-mx.mxs.test)"

# libmilter notices SIGTERM within 5 s (its accept loop polls); allow 10.
term_wait() {
	kill -TERM "$1"
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	wait "$1"
}
term_wait "$MPID"
assert_eq "inet milter: exit status 0 on SIGTERM" 0 "$?"
term_wait "$UPID"
assert_eq "unix milter: exit status 0 on SIGTERM" 0 "$?"
assert_eq "unix socket removed by the milter on SIGTERM" "gone" \
	"$([ -e "$SOCKDIR/milter.sock" ] && echo present || echo gone)"
stop_postfix
if grep -qE 'Sanitizer|runtime error' "$T_DIR"/milter*.log; then
	not_ok "no sanitizer findings" "$(grep -h -m3 -E 'Sanitizer|runtime error' "$T_DIR"/milter*.log)"
fi
if [ "$_T_FAIL" -gt 0 ]; then
	echo "---- milter log"; cat "$T_DIR/milter.log"
	echo "---- postfix log"; postfix_log 2>/dev/null | tail -n 40
fi
finish

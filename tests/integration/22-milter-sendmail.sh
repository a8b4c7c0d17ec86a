#!/usr/bin/env bash
# 22-milter-sendmail.sh - end to end through a real Sendmail 8.17 (tests/lib/sendmail.sh:
# Debian's sendmail-bin unpacked into a private instance) with INPUT_MAIL_FILTER pointing at
# the real mxsane-milter, knotd behind it, and swaks as the SMTP client: the exact reply
# lines for null MX sender and recipient, broken MX sender and recipient, nxdomain, and ok
# (queued, with Sendmail's queue ID in the milter's log line); a warning becomes an X-MXSane
# header in the queued message; a % in a reply reaches the client intact.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/sendmail.sh"

need_bin mxsane-milter
MILTER="$BUILD_DIR/mxsane-milter"

start_knot || { not_ok "knotd starts" "see the log above"; finish; }

CONF="$T_DIR/mxsane.conf"
cat >"$CONF" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
EOF

start_on_free_port milter "$MILTER" -f -u nobody:nogroup -c "$CONF" -p "inet:{PORT}@127.0.0.1" ||
	{ not_ok "mxsane-milter starts" "$(cat "$T_DIR/milter.log")"; finish; }
MPORT=$BG_PORT MPID=$BG_PID

start_sendmail "inet:$MPORT@127.0.0.1" || { not_ok "sendmail starts" "see above"; finish; }
ok "sendmail starts with INPUT_MAIL_FILTER(mxsane, S=inet:$MPORT@127.0.0.1)"

send() { TR=$(sendmail_send "$@"); }
# Sendmail itself puts "<address>... " in front of the text of 450, 550 and 553 replies
# (fmtmsg() in its err.c), not of 556 or 451: the milter's text follows unchanged.
reply() { smtp_reply "$TR" "$@" || echo "<no $* reply in the transcript>"; }

send s@null-mx.mxs.test bob@ok-mx.mxs.test
assert_eq "null MX sender: 550 5.7.27 at MAIL FROM" \
	"550 5.7.27 <s@null-mx.mxs.test>... <s@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply MAIL)"
send s@mx-target-nx.mxs.test bob@ok-mx.mxs.test
assert_eq "broken MX sender: 450 4.1.8" \
	"450 4.1.8 <s@mx-target-nx.mxs.test>... <s@mx-target-nx.mxs.test>: mx-target-nx.mxs.test has no usable mail server (nowhere.mxs.test does not exist (NXDOMAIN))" \
	"$(reply MAIL)"

send s@ok-mx.mxs.test bob@null-mx.mxs.test
assert_eq "null MX recipient: 556 5.1.10" \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT bob@null-mx.mxs.test)"
send s@ok-mx.mxs.test bob@mx-target-nx.mxs.test
assert_eq "broken MX recipient: 450 4.4.4" \
	"450 4.4.4 <bob@mx-target-nx.mxs.test>... <bob@mx-target-nx.mxs.test>: mx-target-nx.mxs.test has no usable mail server (nowhere.mxs.test does not exist (NXDOMAIN))" \
	"$(reply RCPT bob@mx-target-nx.mxs.test)"
send s@ok-mx.mxs.test bob@nonexistent.mxs.test
assert_eq "nxdomain recipient: 550 5.1.2" \
	"550 5.1.2 <bob@nonexistent.mxs.test>... <bob@nonexistent.mxs.test>: nonexistent.mxs.test does not exist" \
	"$(reply RCPT bob@nonexistent.mxs.test)"
send "100%_sure@null-mx.mxs.test" bob@ok-mx.mxs.test
assert_eq "a % in the reply reaches the client once" \
	"550 5.7.27 <100%_sure@null-mx.mxs.test>... <100%_sure@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply MAIL)"

# ---- ok, one rejected and one accepted recipient; Sendmail has the queue ID at MAIL already
send s@ok-mx.mxs.test bob@null-mx.mxs.test alice@ok-mx.mxs.test
assert_eq "per recipient: null MX recipient rejected" \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT bob@null-mx.mxs.test)"
assert_match "ok recipient: 250" '^250 2\.1\.5 <alice@ok-mx\.mxs\.test>\.\.\. Recipient ok' \
	"$(reply RCPT alice@ok-mx.mxs.test)"
DATA=$(reply DATA)
assert_match "ok: message accepted" '^250 2\.0\.0 [0-9A-Za-z]+ Message accepted for delivery$' \
	"$DATA"
QID=$(awk '{ print $3 }' <<<"$DATA")
assert_match "ok: the milter logs Sendmail's queue ID with the accepted recipient" \
	"queue_id=$QID verdict=ok action=accept role=recipient domain=ok-mx\.mxs\.test " \
	"$(cat "$T_DIR/milter.log")"
assert_match "ok: ... and with the sender check at MAIL" \
	"queue_id=$QID verdict=ok action=accept role=sender domain=ok-mx\.mxs\.test " \
	"$(cat "$T_DIR/milter.log")"

# ---- warn: the queued message carries the X-MXSane header
send s@ok-mx.mxs.test bob@mx-cname.mxs.test
DATA=$(reply DATA)
assert_match "mx_cname recipient: accepted" '^250 2\.0\.0 [0-9A-Za-z]+ Message accepted' "$DATA"
QID=$(awk '{ print $3 }' <<<"$DATA")
QF="$SENDMAIL_DIR/queue/qf$QID"
assert_eq "mx_cname: X-MXSane header in the queued message" \
	"X-MXSane: mx_cname mx-cname.mxs.test (MX target alias-host.mxs.test is an alias)" \
	"$(sed -n 's/^H??//p' "$QF" 2>&1 | grep '^X-MXSane:')"

stop_sendmail
kill -TERM "$MPID"
for i in $(seq 100); do
	kill -0 "$MPID" 2>/dev/null || break
	sleep 0.1
done
wait "$MPID"
assert_eq "milter: exit status 0 on SIGTERM" 0 "$?"
if grep -qE 'Sanitizer|runtime error' "$T_DIR/milter.log"; then
	not_ok "no sanitizer findings" "$(grep -m3 -E 'Sanitizer|runtime error' "$T_DIR/milter.log")"
fi
if [ "$_T_FAIL" -gt 0 ]; then
	echo "---- milter log"
	cat "$T_DIR/milter.log"
	echo "---- sendmail traffic"
	tail -n 60 "$SENDMAIL_DIR/traffic.log" 2>/dev/null
fi
finish

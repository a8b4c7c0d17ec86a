#!/usr/bin/env bash
# 31-policy-postfix.sh - end to end through a real Postfix 3.7 (tests/lib/postfix.sh) with
# "smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service
# inet:127.0.0.1:PORT" pointing at the real mxsane-policyd (knotd and faultdns behind it) and
# swaks as the SMTP client: the exact reply lines the client gets for a null MX recipient and
# sender, nxdomain, broken MX, a DNS timeout (4xx within the budget) and ok; the X-MXSane
# header that PREPEND adds for a warning; the queue ID and instance in the decision log;
# smtpd_policy_service_default_action when the daemon is down; and the master.cf variant,
# mxsane-policyd -s under spawn(8).
#
# What the client sees is not byte for byte what mxsane-policyd answers: Postfix wraps a
# policy reply as "CODE DSN <recipient>: Recipient address rejected: TEXT" and rewrites
# X.1.y enhanced codes for the recipient context (smtpd_dsn_fix.c): the 556 5.1.10 of a null
# MX recipient arrives as 556 5.1.0, a sender's 5.1.8 / 4.1.8 as 5.1.2 / 4.1.2 (the milter,
# whose replies Postfix does not remap, gives the exact codes: see 21-milter-postfix.sh).
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

need_bin mxsane-policyd
POLICYD="$BUILD_DIR/mxsane-policyd"
BUDGET=2000

start_knot || { not_ok "knotd starts" "see the log above"; finish; }
start_faultdns || { not_ok "faultdns starts" "see the log above"; finish; }

CONF="$T_DIR/mxsane.conf"
cat >"$CONF" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT", "127.0.0.1:$FAULT_PORT" ];
             timeout_ms = $BUDGET; };
cache = { error_ttl = 0; };
EOF

start_on_free_port policyd "$POLICYD" -f -u nobody:nogroup -c "$CONF" -l "inet:127.0.0.1:{PORT}" ||
	{ not_ok "mxsane-policyd starts" "$(cat "$T_DIR/policyd.log")"; finish; }
PPORT=$BG_PORT PPID_=$BG_PID

# header_checks: a message with X-MXSane is held, so its header can be read with postcat.
HC="$T_DIR/header_checks"
echo '/^X-MXSane:/ HOLD' >"$HC"
start_postfix \
	"smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service inet:127.0.0.1:$PPORT" \
	"header_checks = regexp:$HC" ||
	{ not_ok "postfix starts" "see above"; finish; }
ok "postfix starts with check_policy_service inet:127.0.0.1:$PPORT"

send() { # FROM TO...: one SMTP session; sets TR (transcript), MS (elapsed)
	local t0
	t0=$(now_ms)
	TR=$(smtp_send "$@")
	MS=$(($(now_ms) - t0))
}
reply() { # STAGE [ADDR]
	smtp_reply "$TR" "$@" || echo "<no $* reply in the transcript>"
}
RA="Recipient address rejected"

# ---- recipients
send s@ok-mx.mxs.test bob@null-mx.mxs.test
assert_eq "null MX recipient: 556 5.1.0 (Postfix rewrites the policy's 5.1.10)" \
	"556 5.1.0 <bob@null-mx.mxs.test>: $RA: <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT bob@null-mx.mxs.test)"
grep -q 'verdict=null_mx action=reject role=recipient domain=null-mx.mxs.test reply="556 5.1.10"' \
	"$T_DIR/policyd.log" && ok "mxsane-policyd itself answered 556 5.1.10" ||
	not_ok "policyd answered 556 5.1.10" "no log line"
send s@ok-mx.mxs.test bob@nonexistent.mxs.test
assert_eq "nxdomain recipient: 550 5.1.2" \
	"550 5.1.2 <bob@nonexistent.mxs.test>: $RA: <bob@nonexistent.mxs.test>: nonexistent.mxs.test does not exist" \
	"$(reply RCPT bob@nonexistent.mxs.test)"
send s@ok-mx.mxs.test bob@mx-target-nx.mxs.test
assert_eq "broken MX recipient: 450 4.4.4" \
	"450 4.4.4 <bob@mx-target-nx.mxs.test>: $RA: <bob@mx-target-nx.mxs.test>: mx-target-nx.mxs.test has no usable mail server (nowhere.mxs.test does not exist (NXDOMAIN))" \
	"$(reply RCPT bob@mx-target-nx.mxs.test)"
send s@ok-mx.mxs.test bob@timeout.fault.test
assert_eq "DNS timeout recipient: 451 4.4.3" \
	"451 4.4.3 <bob@timeout.fault.test>: $RA: <bob@timeout.fault.test>: temporary DNS failure for timeout.fault.test (no answer for the MX lookup of timeout.fault.test within $BUDGET ms)" \
	"$(reply RCPT bob@timeout.fault.test)"
if [ "$MS" -ge $((BUDGET - 200)) ] && [ "$MS" -lt $((BUDGET + 2000)) ]; then
	ok "DNS timeout: the whole session within the budget ($MS ms for $BUDGET ms)"
else
	not_ok "DNS timeout: answered within the budget" "$MS ms for $BUDGET ms"
fi

# ---- senders: judged at RCPT time (smtpd_delay_reject = yes), in recipient context
send s@null-mx.mxs.test bob@ok-mx.mxs.test
assert_eq "null MX sender: 550 5.7.27 at RCPT" \
	"550 5.7.27 <bob@ok-mx.mxs.test>: $RA: <s@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT bob@ok-mx.mxs.test)"
send s@nonexistent.mxs.test bob@ok-mx.mxs.test
assert_eq "nxdomain sender: 550 5.1.2 (Postfix rewrites the policy's 5.1.8)" \
	"550 5.1.2 <bob@ok-mx.mxs.test>: $RA: <s@nonexistent.mxs.test>: nonexistent.mxs.test does not exist" \
	"$(reply RCPT bob@ok-mx.mxs.test)"
send s@mx-target-nx.mxs.test bob@ok-mx.mxs.test
assert_eq "broken MX sender: 450 4.1.2 (Postfix rewrites the policy's 4.1.8)" \
	"450 4.1.2 <bob@ok-mx.mxs.test>: $RA: <s@mx-target-nx.mxs.test>: mx-target-nx.mxs.test has no usable mail server (nowhere.mxs.test does not exist (NXDOMAIN))" \
	"$(reply RCPT bob@ok-mx.mxs.test)"
assert_eq "MAIL FROM itself is accepted (the policy runs at RCPT)" "250 2.1.0 Ok" "$(reply MAIL)"

# ---- ok, null sender, per recipient, queue ID
send s@ok-mx.mxs.test bob@ok-mx.mxs.test
assert_eq "ok: RCPT 250" "250 2.1.5 Ok" "$(reply RCPT bob@ok-mx.mxs.test)"
assert_match "ok: message queued" '^250 2\.0\.0 Ok: queued as ' "$(reply DATA)"
send "" bob@ok-mx.mxs.test
assert_eq "null sender <>: RCPT 250" "250 2.1.5 Ok" "$(reply RCPT bob@ok-mx.mxs.test)"
send s@ok-mx.mxs.test alice@ok-mx.mxs.test bob@null-mx.mxs.test carol@implicit-a.mxs.test
assert_eq "per recipient: good one accepted" "250 2.1.5 Ok" "$(reply RCPT alice@ok-mx.mxs.test)"
assert_match "per recipient: null MX one rejected" '^556 5\.1\.0 ' "$(reply RCPT bob@null-mx.mxs.test)"
assert_eq "per recipient: next good one accepted" "250 2.1.5 Ok" "$(reply RCPT carol@implicit-a.mxs.test)"
DATA=$(reply DATA)
assert_match "per recipient: queued for the good ones" '^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$' "$DATA"
QID=${DATA##* }
sleep 0.3
line=$(grep 'recipient=carol@implicit-a.mxs.test' "$T_DIR/policyd.log" | grep 'role=recipient')
assert_match "decision log: queue ID (assigned after the first accepted RCPT), instance, client, helo" \
	"queue_id=$QID verdict=ok action=accept role=recipient domain=implicit-a\.mxs\.test .*instance=[0-9a-f.]+ client_addr=127\.0\.0\.1 client_name=unknown helo=client\.mxs-harness\.test sender=s@ok-mx\.mxs\.test recipient=carol@implicit-a\.mxs\.test" \
	"$line"
inst1=$(grep 'recipient=alice@ok-mx.mxs.test' "$T_DIR/policyd.log" | grep -o 'instance=[^ ]*' | tail -n 1)
inst2=$(grep -o 'instance=[^ ]*' <<<"$line")
assert_eq "one instance attribute for the whole transaction" "$inst1" "$inst2"
# Postfix asks once per recipient: the sender is judged three times, logged once plain and
# then twice marked repeat=yes, so sender verdicts count once per message
assert_eq "sender lines of that message: the first, then two marked repeat=yes" \
	"role=sender role=sender_repeat=yes role=sender_repeat=yes" \
	"$(grep " $inst1 " "$T_DIR/policyd.log" | grep -oE 'role=sender( repeat=yes)?' | tr ' ' _ | paste -sd' ')"

# ---- warn: accepted, PREPEND X-MXSane
send s@ok-mx.mxs.test bob@mx-cname.mxs.test
assert_match "mx_cname recipient: accepted and queued" '^250 2\.0\.0 Ok: queued as ' "$(reply DATA)"
QID=$(reply DATA)
QID=${QID##* }
postfix_wait_log "$QID: hold: header X-MXSane:" 5 >/dev/null
assert_eq "mx_cname: the message carries the X-MXSane header (PREPEND)" \
	"X-MXSane: mx_cname mx-cname.mxs.test (MX target alias-host.mxs.test is an alias)" \
	"$(postfix_exec postcat -h -q "$QID" 2>&1 | grep '^X-MXSane:')"

pf_err=$(grep -E 'warning: .*(policy|127\.0\.0\.1:'"$PPORT"')' "$POSTFIX_LOG" | head -n 3)
[ -z "$pf_err" ] && ok "postfix logged no policy service warning" || not_ok "postfix policy warnings" "$pf_err"

# ---- the daemon down: Postfix's default (451 4.3.5), or smtpd_policy_service_default_action
kill -TERM "$PPID_"
wait "$PPID_"
assert_eq "policyd exits 0 on SIGTERM" 0 "$?"
# connection reuse: Postfix keeps its policy connection open across requests and sessions
stats=$(grep -o 'stopped: [0-9]* connections served, [0-9]* requests answered' "$T_DIR/policyd.log")
read -r nconn nreq < <(sed 's/[^0-9 ]//g' <<<"$stats" | xargs)
[ -n "$nreq" ] && [ "$nreq" -gt $((2 * nconn)) ] &&
	ok "Postfix reused its policy connections ($nreq requests on $nconn connections)" ||
	not_ok "connection reuse" "$stats"
send s@ok-mx.mxs.test bob@ok-mx.mxs.test
assert_eq "daemon down, Postfix default: 451 4.3.5" \
	"451 4.3.5 <bob@ok-mx.mxs.test>: $RA: Server configuration problem" "$(reply RCPT bob@ok-mx.mxs.test)"
sed -i '/^smtpd_policy_service_default_action/d' "$POSTFIX_DIR/etc/main.cf"
echo "smtpd_policy_service_default_action = DUNNO" >>"$POSTFIX_DIR/etc/main.cf"
postfix_reload
send s@ok-mx.mxs.test bob@null-mx.mxs.test
assert_eq "daemon down, smtpd_policy_service_default_action = DUNNO: mail flows" \
	"250 2.1.5 Ok" "$(reply RCPT bob@null-mx.mxs.test)"

# ---- master.cf variant: spawn(8) runs mxsane-policyd -s per connection, as nobody
chmod o+x "$T_DIR"
chmod o+r "$CONF"
cat >>"$POSTFIX_DIR/etc/master.cf" <<EOF
mxsane-policy unix - n n - 0 spawn
  user=nobody argv=$POLICYD -s -c $CONF
EOF
sed -i '/^smtpd_recipient_restrictions/d; /^smtpd_policy_service_default_action/d' "$POSTFIX_DIR/etc/main.cf"
echo "smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service unix:private/mxsane-policy" \
	>>"$POSTFIX_DIR/etc/main.cf"
postfix_reload
send s@ok-mx.mxs.test bob@null-mx.mxs.test alice@ok-mx.mxs.test
assert_eq "spawn variant: null MX recipient rejected" \
	"556 5.1.0 <bob@null-mx.mxs.test>: $RA: <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT bob@null-mx.mxs.test)"
assert_eq "spawn variant: good recipient accepted" "250 2.1.5 Ok" "$(reply RCPT alice@ok-mx.mxs.test)"
stop_postfix
sleep 0.3
left=$(pgrep -f -- "$POLICYD -s -c $CONF" || true)
[ -z "$left" ] && ok "no spawned mxsane-policyd left after Postfix stopped" ||
	not_ok "spawned daemons gone" "pids $left"
if grep -qE 'Sanitizer|runtime error' "$T_DIR"/policyd*.log; then
	not_ok "no sanitizer findings" "$(grep -h -m3 -E 'Sanitizer|runtime error' "$T_DIR"/policyd*.log)"
fi
if [ "$_T_FAIL" -gt 0 ]; then
	echo "---- policyd log"; tail -n 30 "$T_DIR/policyd.log"
	echo "---- postfix log"; postfix_log 2>/dev/null | tail -n 40
fi
finish

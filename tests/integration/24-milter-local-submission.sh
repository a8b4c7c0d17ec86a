#!/usr/bin/env bash
# 24-milter-local-submission.sh - mail submitted on the machine itself, through a real Postfix
# whose non_smtpd_milters (and smtpd_milters) point at the real mxsane-milter, knotd behind
# it: `sendmail -f root@host.internal.invalid` (a sender that only exists inside the site) is
# queued and delivered, the milter logging the sender as skipped with the reason; with
# checks.local_sender = true that sender is checked (a tempfail: the message stays in
# maildrop); recipients are checked, a refusal given at DATA when no recipient is left (Postfix
# cannot refuse one recipient of non-SMTP mail); an SMTP client on 127.0.0.1 (even one saying
# HELO localhost) is still checked, its recipients refused at RCPT.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

need_bin mxsane-milter
MILTER="$BUILD_DIR/mxsane-milter"

start_knot || { not_ok "knotd starts" "see the log above"; finish; }

# Two milters: the defaults, and one with checks.local_sender = true.
CONF="$T_DIR/mxsane.conf"
cat >"$CONF" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
cache = { error_ttl = 0; };
EOF
LCONF="$T_DIR/local-sender.conf"
cat "$CONF" - >"$LCONF" <<EOF
checks = { local_sender = true; };
EOF
start_on_free_port milter "$MILTER" -f -u nobody:nogroup -c "$CONF" -p "inet:{PORT}@127.0.0.1" ||
	{ not_ok "mxsane-milter starts" "$(cat "$T_DIR/milter.log")"; finish; }
MPORT=$BG_PORT
start_on_free_port milter-ls "$MILTER" -f -u nobody:nogroup -c "$LCONF" \
	-p "inet:{PORT}@127.0.0.1" ||
	{ not_ok "mxsane-milter (local_sender) starts" "$(cat "$T_DIR/milter-ls.log")"; finish; }
LPORT=$BG_PORT

# pf_start PORT: Postfix with the milter on PORT for SMTP and for non-SMTP mail, as DKIM
# guides set it up (non_smtpd_milters = $smtpd_milters).  tempfail when the milter cannot be
# reached (Postfix's default), so that a broken milter cannot pass for an accepting one.
pf_start() {
	start_postfix "smtpd_milters = inet:127.0.0.1:$1" 'non_smtpd_milters = $smtpd_milters' \
		"milter_default_action = tempfail" "myhostname = host.internal.invalid"
}
# submit FROM TO...: sendmail(1) inside the instance; prints the queue ID pickup gave it
submit() {
	local from=$1 before
	shift
	before=$(grep -c 'postfix/pickup\[' "$POSTFIX_LOG")
	printf 'Subject: local submission\n\nfrom cron\n' |
		postfix_exec sendmail -f "$from" "$@" || echo "sendmail exited $?" >&2
	for i in $(seq 100); do
		[ "$(grep -c 'postfix/pickup\[' "$POSTFIX_LOG")" -gt "$before" ] && break
		sleep 0.1
	done
	grep 'postfix/pickup\[' "$POSTFIX_LOG" | tail -n 1 | sed -n 's/.*: \([0-9A-F]*\): uid=.*/\1/p'
}
maildrop() { ls "$POSTFIX_DIR/spool/maildrop"; }
mlog() { grep -F "$1" "$T_DIR/${2:-milter}.log"; }
# mlog_wait TEXT [LOG]: the same, waiting (max 5 s) for the line: the milter may write its
# decision a moment after pickup(8) has logged the message
mlog_wait() {
	local i
	for i in $(seq 50); do
		mlog "$@" >/dev/null && break
		sleep 0.1
	done
	mlog "$@"
}

pf_start "$MPORT" || { not_ok "postfix starts" "see above"; finish; }
ok "postfix starts with smtpd_milters and non_smtpd_milters = inet:127.0.0.1:$MPORT"

# ---- default: the sender of local mail is not checked; the message leaves
QID=$(submit root@host.internal.invalid bob@ok-mx.mxs.test)
assert_match "sendmail(1): picked up" '^[0-9A-F]+$' "$QID"
assert_match "sendmail(1): the message is delivered (not held by a 4xx)" \
	"$QID: to=<bob@ok-mx\.mxs\.test>.*status=sent" \
	"$(postfix_wait_log "$QID: to=<bob@ok-mx.mxs.test>.*status=" 10)"
assert_match "sendmail(1): the sender is logged as skipped, with the reason" \
	"queue_id=$QID verdict=skipped action=accept role=sender .*client_addr=127\.0\.0\.1 client_name=localhost .*reason=\"locally submitted mail \(sender not checked: checks\.local_sender = false\)\"" \
	"$(mlog_wait "queue_id=$QID verdict=skipped")"
assert_match "sendmail(1): its recipient is still checked" \
	"queue_id=$QID verdict=ok action=accept role=recipient domain=ok-mx\.mxs\.test " \
	"$(mlog_wait "queue_id=$QID verdict=ok")"
assert_eq "sendmail(1): nothing left in maildrop" "" "$(maildrop)"

# ---- recipients of local mail are checked.  Postfix cannot refuse one recipient of
# non-SMTP mail (a refusal at RCPT is a "configuration error" that keeps the message in
# maildrop): the refusal waits for DATA, and when no recipient is left the message is
# refused there and bounced to its sender at once.
QID=$(submit root@host.internal.invalid bob@null-mx.mxs.test)
assert_match "null MX recipient of local mail: checked" \
	"queue_id=$QID verdict=null_mx action=reject role=recipient domain=null-mx\.mxs\.test reply=\"556 5\.1\.10\"" \
	"$(mlog_wait "queue_id=$QID verdict=null_mx")"
assert_match "null MX recipient of local mail: the message is refused at DATA" \
	"$QID: milter-reject: DATA from localhost\[127\.0\.0\.1\]: 5\.1\.10 <bob@null-mx\.mxs\.test>: null-mx\.mxs\.test does not accept mail \(null MX\)" \
	"$(postfix_wait_log "$QID: milter-reject: " 5)"
assert_match "null MX recipient of local mail: bounced to the sender at once" \
	"$QID: to=<bob@null-mx\.mxs\.test>, .*dsn=5\.1\.10, status=bounced \(<bob@null-mx\.mxs\.test>: null-mx\.mxs\.test does not accept mail \(null MX\)\)" \
	"$(postfix_wait_log "$QID: to=<bob@null-mx.mxs.test>" 5)"
assert_match "null MX recipient of local mail: the sender is notified" \
	"$QID: sender non-delivery notification" "$(postfix_wait_log "$QID: sender non-delivery" 5)"
assert_eq "null MX recipient of local mail: no milter configuration error" "" \
	"$(grep "$QID: warning: milter configuration error" "$POSTFIX_LOG")"
assert_match "null MX recipient of local mail: the refusal at DATA is logged" \
	"queue_id=$QID: locally submitted message refused at DATA: every recipient was refused \(556 5\.1\.10\)" \
	"$(mlog_wait "queue_id=$QID: locally submitted")"
assert_eq "null MX recipient of local mail: nothing left in maildrop" "" "$(maildrop)"

# one refused and one good recipient: the good one gets the message
QID=$(submit root@host.internal.invalid bob@null-mx.mxs.test alice@ok-mx.mxs.test)
assert_match "mixed recipients of local mail: delivered to the good one" \
	"$QID: to=<alice@ok-mx\.mxs\.test>.*status=sent" \
	"$(postfix_wait_log "$QID: to=<alice@ok-mx.mxs.test>" 10)"
assert_match "mixed recipients of local mail: logged" \
	"queue_id=$QID: locally submitted message accepted for its other recipients; the refused ones are left to the MTA's delivery" \
	"$(mlog_wait "queue_id=$QID: locally submitted")"
assert_eq "mixed recipients of local mail: not refused" "" \
	"$(grep "$QID: milter-reject" "$POSTFIX_LOG")"

# a temporary failure for a recipient of local mail: let through to the MTA's queue, which
# retries (a tempfail would keep the message in maildrop with no end)
QID=$(submit root@host.internal.invalid bob@host.internal.invalid)
assert_match "dns_error recipient of local mail: checked" \
	"queue_id=$QID verdict=dns_error action=tempfail role=recipient " \
	"$(mlog_wait "queue_id=$QID verdict=dns_error")"
assert_match "dns_error recipient of local mail: queued" \
	"$QID: to=<bob@host\.internal\.invalid>.*status=sent" \
	"$(postfix_wait_log "$QID: to=<bob@host.internal.invalid>" 10)"
assert_eq "dns_error recipient of local mail: nothing left in maildrop" "" "$(maildrop)"

# ---- an SMTP client on 127.0.0.1 is not local submission: its sender is checked
TR=$(smtp_send root@host.internal.invalid bob@ok-mx.mxs.test)
assert_eq "SMTP from 127.0.0.1: the same sender gets 451 4.4.3 at MAIL FROM" \
	"451 4.4.3 <root@host.internal.invalid>: temporary DNS failure for host.internal.invalid (MX lookup for host.internal.invalid: the DNS server answered SERVFAIL or REFUSED, or was unreachable)" \
	"$(smtp_reply "$TR" MAIL)"
# ... even when it says HELO localhost, as cleanup(8) does for local mail
SWAKS_ARGS=(--helo localhost)
TR=$(smtp_send root@host.internal.invalid bob@ok-mx.mxs.test)
SWAKS_ARGS=()
assert_match "SMTP from 127.0.0.1 with HELO localhost: still 451 4.4.3" '^451 4\.4\.3 ' \
	"$(smtp_reply "$TR" MAIL)"
# ... and its recipients are refused at RCPT as ever
TR=$(smtp_send s@ok-mx.mxs.test bob@null-mx.mxs.test alice@ok-mx.mxs.test)
assert_eq "SMTP from 127.0.0.1: null MX recipient refused at RCPT" \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(smtp_reply "$TR" RCPT bob@null-mx.mxs.test)"
assert_match "SMTP from 127.0.0.1: the message is queued for the good recipient" \
	'^250 2\.0\.0 Ok: queued as ' "$(smtp_reply "$TR" DATA)"
# (Postfix's smtpd names a client it does not look up "unknown"; cleanup(8) says localhost)
assert_match "SMTP from 127.0.0.1: decisions logged" 'client_name=unknown' \
	"$(cat "$T_DIR/milter.log")"
assert_eq "SMTP from 127.0.0.1: none of them taken as locally submitted" "" \
	"$(grep 'client_name=unknown' "$T_DIR/milter.log" | grep 'locally submitted')"

# ---- checks.local_sender = true: the sender of local mail is checked
pf_start "$LPORT" || { not_ok "postfix starts (local_sender)" "see above"; finish; }
QID=$(submit root@host.internal.invalid bob@ok-mx.mxs.test)
assert_match "local_sender = true: the sender is checked (dns_error, tempfail)" \
	"queue_id=$QID verdict=dns_error action=tempfail role=sender domain=host\.internal\.invalid .*reply=\"451 4\.4\.3\"" \
	"$(mlog_wait "verdict=dns_error" milter-ls | head -n 1)"
assert_match "local_sender = true: Postfix logs the milter's tempfail at MAIL" \
	"$QID: milter-reject: MAIL from localhost\[127\.0\.0\.1\]: 4\.4\.3 <root@host\.internal\.invalid>" \
	"$(postfix_wait_log "$QID: milter-reject: MAIL" 5)"
# (the maildrop file is named by postdrop; pickup gives each attempt a new queue ID)
assert_eq "local_sender = true: the message waits in maildrop" 1 "$(maildrop | wc -l)"
assert_eq "local_sender = true: no sender skipped as local" "" "$(mlog 'locally submitted' milter-ls)"

stop_postfix
if grep -qE 'Sanitizer|runtime error' "$T_DIR"/milter*.log; then
	not_ok "no sanitizer findings" "$(grep -h -m3 -E 'Sanitizer|runtime error' "$T_DIR"/milter*.log)"
fi
if [ "$_T_FAIL" -gt 0 ]; then
	echo "---- milter log"; cat "$T_DIR/milter.log"
	echo "---- milter (local_sender) log"; cat "$T_DIR/milter-ls.log"
	echo "---- postfix log"; postfix_log 2>/dev/null | tail -n 40
fi
finish

#!/usr/bin/env bash
# 39-policy-recipient-policies.sh - recipient_policies_file through a real Postfix 3.7 with
# check_policy_service pointing at the real mxsane-policyd: the sender's verdict is applied
# under each recipient's policy.  One transaction from a null-MX sender to three hosted
# domains: one opted out of sender checks (accepted), one without an entry (refused with
# 550 5.7.27, the main configuration), one in monitor mode (accepted; the decision says
# action=warn would=reject); a null-MX recipient in monitor mode beside one in enforce mode;
# every decision line names the policy entry that applied; -n and a reload check the file
# (errors with file and line; a bad file keeps the running policies).
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

need_bin mxsane-policyd
POLICYD="$BUILD_DIR/mxsane-policyd"

start_knot || { not_ok "knotd starts" "see the log above"; finish; }

POL="$T_DIR/recipient-policies"
printf '%s\n' "# hosted customers" \
	"ok-mx.mxs.test          check_sender=false      # wants every sender" \
	"implicit-aaaa.mxs.test  mode=monitor" \
	"null-mx-a.mxs.test      mode=monitor" >"$POL"
CONF="$T_DIR/mxsane.conf"
printf '%s\n' "resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\" ]; timeout_ms = 2000; };" \
	"recipient_policies_file = \"$POL\";" >"$CONF"
# read again at reload, after the privilege drop
chmod o+rx "$T_DIR"
chmod o+r "$CONF" "$POL"

run() { # CMD...: sets RC, ERR
	"$@" >"$T_DIR/out" 2>"$T_DIR/err"
	RC=$?
	ERR=$(cat "$T_DIR/err")
}
run "$POLICYD" -n -c "$CONF"
assert_eq "policyd -n with a good policies file: exit 0" 0 "$RC"
printf 'a.example mode=monitor\nb.example dns_error=reject\n' >"$T_DIR/bad-pol"
sed "s|$POL|$T_DIR/bad-pol|" "$CONF" >"$T_DIR/bad.conf"
run "$POLICYD" -n -c "$T_DIR/bad.conf"
assert_eq "policyd -n with a bad policies file: exit 78" 78 "$RC"
assert_match "policyd -n: the error names the policies file and line" \
	"$T_DIR/bad-pol:2: dns_error=reject: a temporary DNS failure must never bounce mail" "$ERR"

start_on_free_port policyd "$POLICYD" -f -u nobody:nogroup -c "$CONF" -l "inet:127.0.0.1:{PORT}" ||
	{ not_ok "mxsane-policyd starts" "$(cat "$T_DIR/policyd.log")"; finish; }
PPORT=$BG_PORT PPID_=$BG_PID

start_postfix \
	"smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service inet:127.0.0.1:$PPORT" ||
	{ not_ok "postfix starts" "see above"; finish; }
ok "postfix starts with check_policy_service inet:127.0.0.1:$PPORT"

reply() { # STAGE [ADDR]
	smtp_reply "$TR" "$@" || echo "<no $* reply in the transcript>"
}
RA="Recipient address rejected"
LOG="$T_DIR/policyd.log"

# ---- one transaction, a null-MX sender, three hosted domains
TR=$(smtp_send s@null-mx.mxs.test bob@ok-mx.mxs.test carol@implicit-a.mxs.test dave@implicit-aaaa.mxs.test)
assert_eq "MAIL FROM accepted (the policy runs at RCPT)" "250 2.1.0 Ok" "$(reply MAIL)"
assert_eq "opted out of sender checks: accepted" "250 2.1.5 Ok" "$(reply RCPT bob@ok-mx.mxs.test)"
assert_eq "no entry (main configuration): refused with 550 5.7.27" \
	"550 5.7.27 <carol@implicit-a.mxs.test>: $RA: <s@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT carol@implicit-a.mxs.test)"
assert_eq "monitor mode: accepted" "250 2.1.5 Ok" "$(reply RCPT dave@implicit-aaaa.mxs.test)"
assert_match "queued for the two accepting recipients" '^250 2\.0\.0 Ok: queued as ' "$(reply DATA)"
sleep 0.3
assert_match "log: the opted-out recipient's sender line is skipped, naming the entry" \
	'verdict=skipped action=accept role=sender policy=ok-mx\.mxs\.test .*recipient=bob@ok-mx\.mxs\.test reason="sender checks are disabled for mail to ok-mx\.mxs\.test \(recipient_policies_file\)"' \
	"$(grep 'recipient=bob@ok-mx' "$LOG" | grep 'role=sender')"
line=$(grep 'recipient=carol@implicit-a.mxs.test' "$LOG" | grep 'role=sender')
assert_match "log: the refusal under the main configuration" \
	'verdict=null_mx action=reject role=sender domain=null-mx\.mxs\.test reply="550 5\.7\.27"' "$line"
if [[ $line == *policy=* ]]; then not_ok "no policy= without an entry" "$line"; else ok "no policy= without an entry"; fi
assert_match "log: monitor mode turns the refusal into a warning with would=" \
	'verdict=null_mx action=warn would=reject mode=monitor role=sender (repeat=yes )?policy=implicit-aaaa\.mxs\.test domain=null-mx\.mxs\.test' \
	"$(grep 'recipient=dave@implicit-aaaa.mxs.test' "$LOG" | grep 'role=sender')"
assert_match "log: the recipient check names its own entry" \
	'verdict=ok action=accept role=recipient policy=implicit-aaaa\.mxs\.test domain=implicit-aaaa\.mxs\.test' \
	"$(grep 'recipient=dave@implicit-aaaa.mxs.test' "$LOG" | grep 'role=recipient')"

# ---- recipients: one null-MX domain in monitor mode, the other enforced
TR=$(smtp_send s@ok-mx.mxs.test bob@null-mx-a.mxs.test carol@null-mx.mxs.test)
assert_eq "null-MX recipient in monitor mode: accepted" "250 2.1.5 Ok" "$(reply RCPT bob@null-mx-a.mxs.test)"
assert_match "null-MX recipient enforced: 556 5.1.0 (Postfix's rewrite of 5.1.10)" '^556 5\.1\.0 ' \
	"$(reply RCPT carol@null-mx.mxs.test)"
sleep 0.3
assert_match "log: the recipient's refusal became a warning" \
	'verdict=null_mx action=warn would=reject mode=monitor role=recipient policy=null-mx-a\.mxs\.test' \
	"$(grep 'recipient=bob@null-mx-a.mxs.test' "$LOG" | grep 'role=recipient')"

# ---- reload: a changed file applies; a bad one keeps the running policies
reloaded() { # N: wait for the Nth reload line (success or failure)
	local i
	for i in $(seq 50); do
		[ "$(grep -cE 'configuration reloaded|reload failed' "$LOG")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
echo "implicit-a.mxs.test check_sender=false" >>"$POL"
kill -HUP "$PPID_"
reloaded 1 || not_ok "reload logged" "$(tail -n 5 "$LOG")"
TR=$(smtp_send s@null-mx.mxs.test carol@implicit-a.mxs.test)
assert_eq "after a reload, a domain opted out in the file accepts the sender" "250 2.1.5 Ok" \
	"$(reply RCPT carol@implicit-a.mxs.test)"
echo "implicit-a.mxs.test mode=loud" >>"$POL"
kill -HUP "$PPID_"
reloaded 2 || not_ok "failed reload logged" "$(tail -n 5 "$LOG")"
assert_match "a reload with a bad file is refused, naming file and line" \
	"reload failed, keeping the running configuration: $POL:6: 'mode': invalid value 'loud'" \
	"$(grep 'reload failed' "$LOG")"
TR=$(smtp_send s@null-mx.mxs.test carol@implicit-a.mxs.test)
assert_eq "the running policies are kept" "250 2.1.5 Ok" "$(reply RCPT carol@implicit-a.mxs.test)"
finish

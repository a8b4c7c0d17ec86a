#!/usr/bin/env bash
# 27-milter-recipient-policies.sh - recipient_policies_file through a real Postfix 3.7 with the
# real mxsane-milter: the sender is not refused at MAIL FROM but checked at each RCPT under
# that recipient's policy (as smtpd_delay_reject does), with the milter's exact codes.  One
# transaction from a null-MX sender to three hosted domains: opted out of sender checks
# (accepted), no entry (550 5.7.27 for that recipient only), monitor mode (accepted, logged
# action=warn would=reject); a null-MX recipient in monitor mode beside one enforced (556
# 5.1.10); -n checks the file.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

need_bin mxsane-milter
MILTER="$BUILD_DIR/mxsane-milter"

start_knot || { not_ok "knotd starts" "see the log above"; finish; }

POL="$T_DIR/recipient-policies"
printf '%s\n' "# hosted customers" \
	"ok-mx.mxs.test          check_sender=false      # wants every sender" \
	"implicit-aaaa.mxs.test  mode=monitor" \
	"null-mx-a.mxs.test      mode=monitor" >"$POL"
CONF="$T_DIR/mxsane.conf"
printf '%s\n' "resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\" ]; timeout_ms = 2000; };" \
	"recipient_policies_file = \"$POL\";" >"$CONF"
chmod o+rx "$T_DIR"
chmod o+r "$CONF" "$POL"

"$MILTER" -n -c "$CONF" >/dev/null 2>"$T_DIR/err"
assert_eq "milter -n with a good policies file: exit 0" 0 "$?"
printf 'a.example mode=monitor\nb.example colour=blue\n' >"$T_DIR/bad-pol"
sed "s|$POL|$T_DIR/bad-pol|" "$CONF" >"$T_DIR/bad.conf"
"$MILTER" -n -c "$T_DIR/bad.conf" >/dev/null 2>"$T_DIR/err"
assert_eq "milter -n with a bad policies file: exit 78" 78 "$?"
assert_match "milter -n: the error names the policies file and line" \
	"$T_DIR/bad-pol:2: unknown key 'colour'" "$(cat "$T_DIR/err")"

start_on_free_port milter "$MILTER" -f -u nobody:nogroup -c "$CONF" -p "inet:{PORT}@127.0.0.1" ||
	{ not_ok "mxsane-milter starts" "$(cat "$T_DIR/milter.log")"; finish; }
MPORT=$BG_PORT

start_postfix "smtpd_milters = inet:127.0.0.1:$MPORT" "milter_default_action = tempfail" \
	"milter_protocol = 6" ||
	{ not_ok "postfix starts" "see above"; finish; }
ok "postfix starts with smtpd_milters = inet:127.0.0.1:$MPORT"

reply() { # STAGE [ADDR]
	smtp_reply "$TR" "$@" || echo "<no $* reply in the transcript>"
}
LOG="$T_DIR/milter.log"

# ---- one transaction, a null-MX sender, three hosted domains
TR=$(smtp_send s@null-mx.mxs.test bob@ok-mx.mxs.test carol@implicit-a.mxs.test dave@implicit-aaaa.mxs.test)
assert_eq "MAIL FROM accepted: the sender's verdict waits for the recipients" "250 2.1.0 Ok" "$(reply MAIL)"
assert_eq "opted out of sender checks: accepted" "250 2.1.5 Ok" "$(reply RCPT bob@ok-mx.mxs.test)"
assert_eq "no entry (main configuration): refused with the sender's 550 5.7.27" \
	"550 5.7.27 <s@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT carol@implicit-a.mxs.test)"
assert_eq "monitor mode: accepted" "250 2.1.5 Ok" "$(reply RCPT dave@implicit-aaaa.mxs.test)"
assert_match "queued for the two accepting recipients" '^250 2\.0\.0 Ok: queued as ' "$(reply DATA)"
sleep 0.3
assert_match "log: the opted-out recipient's sender line is skipped, naming the entry" \
	'verdict=skipped action=accept role=sender policy=ok-mx\.mxs\.test .*recipient=<bob@ok-mx\.mxs\.test> reason="sender checks are disabled for mail to ok-mx\.mxs\.test \(recipient_policies_file\)"' \
	"$(grep 'recipient=<bob@ok-mx' "$LOG" | grep 'role=sender')"
line=$(grep 'recipient=<carol@implicit-a.mxs.test>' "$LOG" | grep 'role=sender')
assert_match "log: the refusal under the main configuration" \
	'verdict=null_mx action=reject role=sender domain=null-mx\.mxs\.test reply="550 5\.7\.27"' "$line"
assert_eq "carol's recipient check is not run after the sender's refusal" "" \
	"$(grep 'recipient=<carol@implicit-a.mxs.test>' "$LOG" | grep 'role=recipient')"
assert_match "log: monitor mode turns the refusal into a warning with would=, a repeat of the sender's verdict" \
	'verdict=null_mx action=warn would=reject mode=monitor role=sender repeat=yes policy=implicit-aaaa\.mxs\.test domain=null-mx\.mxs\.test' \
	"$(grep 'recipient=<dave@implicit-aaaa.mxs.test>' "$LOG" | grep 'role=sender')"
assert_eq "one decision line per check: the sender for each of three recipients, two recipients" 5 \
	"$(grep -c 'sender=<s@null-mx.mxs.test>' "$LOG")"

# ---- recipients: one null-MX domain in monitor mode, the other enforced
TR=$(smtp_send s@ok-mx.mxs.test bob@null-mx-a.mxs.test carol@null-mx.mxs.test)
assert_eq "null-MX recipient in monitor mode: accepted" "250 2.1.5 Ok" "$(reply RCPT bob@null-mx-a.mxs.test)"
assert_eq "null-MX recipient enforced: 556 5.1.10" \
	"556 5.1.10 <carol@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(reply RCPT carol@null-mx.mxs.test)"
sleep 0.3
assert_match "log: the recipient's refusal became a warning" \
	'verdict=null_mx action=warn would=reject mode=monitor role=recipient policy=null-mx-a\.mxs\.test' \
	"$(grep 'recipient=<bob@null-mx-a.mxs.test>' "$LOG" | grep 'role=recipient')"
finish

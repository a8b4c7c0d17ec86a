#!/usr/bin/env bash
# tests/integration/05-mta-harness.sh - self-test of the MTA harness (tests/lib/postfix.sh,
# tests/lib/sendmail.sh), with no mxsane at all: a real Postfix accepts and discards a message,
# consults a policy service placed as README-mta.md says and a milter; a real Sendmail consults
# its milter (F=T tempfails when the milter is down) and only queues; the host's mail
# configuration is untouched and no process of the test survives it.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/postfix.sh"
. "$MXS_TOP/tests/lib/sendmail.sh"

# What the harness must never change on the host.
host_state() {
	(
		cd /etc/postfix && find . -type f -print0 | sort -z | xargs -0 sha256sum
		find /etc/postfix -printf '%p %y %m %u %g %l\n' | sort
	) 2>&1
	for p in /var/spool/postfix /var/lib/postfix /var/mail /etc/mail /var/spool/mqueue \
		/var/spool/mqueue-client /etc/aliases /etc/aliases.db /run/sendmail; do
		[ -e "$p" ] || { echo "absent $p"; continue; }
		find "$p" -printf '%p %y %m %u %g %s %T@\n' 2>&1 | sort
	done
}

# Processes whose PID namespace is one of ours, or whose command line names our T_DIR.
leftovers() {
	local dir ns
	find /proc/[0-9]*/ns -maxdepth 1 -name pid -printf '%h %l\n' 2>/dev/null |
		while read -r dir ns; do
			[ -n "$ns" ] || continue
			case " $NS_SEEN " in *" $ns "*) echo "${dir%/ns} in $ns" ;; esac
		done
	pgrep -a -f -- "$T_DIR"
}
NS_SEEN=

need_cmd swaks sha256sum
before=$(host_state)

# ---- Postfix: accept, discard, log -------------------------------------------------------
t0=$(now_ms)
start_postfix || { not_ok "postfix starts" "see above"; finish; }
ok "postfix starts ($(($(now_ms) - t0)) ms, port $POSTFIX_PORT)"
NS_SEEN="$NS_SEEN $(readlink "/proc/$POSTFIX_PID/ns/pid")"
assert_eq "postfix master is PID 1 of its namespace" 1 \
	"$(awk '/^NSpid:/ { print $NF }' "/proc/$POSTFIX_PID/status")"
assert_match "the instance's /etc/postfix is private" "relay_domains = static:ALL" \
	"$(postfix_exec postconf relay_domains 2>&1)"

tr=$(smtp_send a@example.org b@example.net)
rc=$?
assert_eq "swaks exit status" 0 "$rc"
assert_match "MAIL accepted" '^250 2\.1\.0' "$(smtp_reply "$tr" MAIL)"
assert_match "RCPT accepted" '^250 2\.1\.5' "$(smtp_reply "$tr" RCPT b@example.net)"
data=$(smtp_reply "$tr" DATA)
assert_match "250 at end of data" '^250 2\.0\.0 Ok: queued as [0-9A-F]+$' "$data"
qid=${data##* }
line=$(postfix_wait_log "postfix/discard\[[0-9]+\]: $qid: to=<b@example.net>.*status=sent" 10)
assert_match "the log shows the discard delivery" "relay=none.*dsn=2\.0\.0, status=sent" "$line"
assert_match "swaks_replies: one line per command" \
	'^CONNECT 220 .*EHLO 250 .*MAIL 250 .*RCPT b@example.net 250 .*DATA 250 .*QUIT 221 ' \
	"$(swaks_replies <<<"$tr" | tr '\n' ' ')"

# ---- Postfix: a policy service placed as README-mta.md says is consulted -----------------
pport=$(free_port)
"$PY" - "$pport" <<'EOF' >"$T_DIR/policy.log" 2>&1 &
# A throw-away policy server: "deny@" recipients get a 554, everything else DUNNO.
import socketserver, sys, threading
class H(socketserver.StreamRequestHandler):
    def handle(self):
        attrs = {}
        for raw in self.rfile:
            line = raw.decode().rstrip("\n")
            if line:
                k, _, v = line.partition("=")
                attrs[k] = v
                continue
            print("request", attrs.get("protocol_state"), attrs.get("sender"),
                  attrs.get("recipient"), flush=True)
            act = "554 5.7.1 denied by the test policy" \
                if attrs.get("recipient", "").startswith("deny@") else "DUNNO"
            self.wfile.write(("action=%s\n\n" % act).encode())
            attrs = {}
socketserver.ThreadingTCPServer.allow_reuse_address = True
s = socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H)
s.daemon_threads = True
threading.Timer(120, s.shutdown).start()
s.serve_forever()
EOF
track_pid $!
wait_port "$pport" || not_ok "policy server starts" "$(cat "$T_DIR/policy.log")"
sed -i '/^smtpd_recipient_restrictions =/d' "$POSTFIX_DIR/etc/main.cf"
echo "smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service inet:127.0.0.1:$pport" \
	>>"$POSTFIX_DIR/etc/main.cf"
if postfix_reload; then ok "postfix_reload"; else not_ok "postfix_reload" "no reload line in the log"; fi
tr=$(smtp_send "" deny@example.net ok@example.net)
assert_match "the policy service decides at RCPT" '^554 5\.7\.1 <deny@example\.net>: .*denied by the test policy' \
	"$(smtp_reply "$tr" RCPT deny@example.net)"
assert_match "other recipients are unaffected" '^250 ' "$(smtp_reply "$tr" RCPT ok@example.net)"
assert_match "null sender, data accepted" '^250 ' "$(smtp_reply "$tr" DATA)"
assert_match "the policy server saw protocol_state=RCPT" "request RCPT  deny@example.net" \
	"$(cat "$T_DIR/policy.log")"

# ---- Postfix: smtpd_milters is consulted (a milter nobody listens on -> tempfail) ---------
mport=$(free_port)
start_postfix "smtpd_milters = inet:127.0.0.1:$mport" "milter_default_action = tempfail" ||
	not_ok "postfix restarts with a milter" "see above"
NS_SEEN="$NS_SEEN $(readlink "/proc/$POSTFIX_PID/ns/pid")"
tr=$(smtp_send a@example.org b@example.net)
assert_match "postfix: unreachable milter -> 451 at MAIL" '^451 4\.7\.1 ' "$(smtp_reply "$tr" MAIL)"
if postfix_wait_log "connect to Milter service inet:127.0.0.1:$mport" 5 >/dev/null; then
	ok "postfix logged the milter connection attempt"
else
	not_ok "postfix logged the milter connection attempt" "$(postfix_log | tail -n 5)"
fi
stop_postfix

# ---- Sendmail ------------------------------------------------------------------------------
t0=$(now_ms)
start_sendmail "inet:$mport@127.0.0.1" || { not_ok "sendmail starts" "see above"; finish; }
ok "sendmail starts ($(($(now_ms) - t0)) ms, port $SENDMAIL_PORT)"
NS_SEEN="$NS_SEEN $(readlink "/proc/$SENDMAIL_PID/ns/pid")"
assert_match "sendmail.cf has the milter with F=T" \
	"^Xmxsane, S=inet:$mport@127\.0\.0\.1, F=T, T=C:10s;S:10s;R:10s;E:30s" \
	"$(grep '^Xmxsane' "$SENDMAIL_CF")"
tr=$(sendmail_send a@example.org b@example.net)
assert_match "sendmail greets" '^220 mta\.mxs-harness\.test ESMTP Sendmail 8\.17' \
	"$(smtp_reply "$tr" CONNECT)"
assert_match "sendmail: unreachable milter with F=T -> 4xx tempfail at MAIL" '^451 4\.3\.2 ' \
	"$(smtp_reply "$tr" MAIL)"
assert_eq "nothing queued" "" "$(sendmail_queue)"

start_sendmail "" || { not_ok "sendmail restarts without a milter" "see above"; finish; }
NS_SEEN="$NS_SEEN $(readlink "/proc/$SENDMAIL_PID/ns/pid")"
tr=$(sendmail_send a@example.org b@example.net c@example.com)
assert_match "sendmail without milter: MAIL accepted" '^250 2\.1\.0' "$(smtp_reply "$tr" MAIL)"
assert_match "sendmail relays any domain" '^250 2\.1\.5' "$(smtp_reply "$tr" RCPT c@example.com)"
assert_match "sendmail: 250 at end of data" '^250 2\.0\.0 [0-9A-Za-z]+ Message accepted' \
	"$(smtp_reply "$tr" DATA)"
assert_eq "the message is only queued (private queue, no delivery)" 1 "$(sendmail_queue | wc -l)"
stop_sendmail

# ---- Nothing left behind -----------------------------------------------------------------
# The policy server is ours too; stop it before counting.
for p in "${_T_PIDS[@]+"${_T_PIDS[@]}"}"; do stop_pid "$p"; done
left=$(leftovers)
assert_eq "no process of the test survives" "" "$left"
after=$(host_state)
if [ "$before" = "$after" ]; then
	ok "/etc/postfix, the host's spool and mail directories are unchanged"
else
	not_ok "/etc/postfix, the host's spool and mail directories are unchanged" \
		"$(diff <(echo "$before") <(echo "$after") | head -n 20)"
fi
finish

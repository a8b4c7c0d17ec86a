#!/usr/bin/env bash
# 38-policy-fleet.sh - one mxsane-policyd shared by two isolated Postfix instances, as a
# fleet runs it: both MTAs are answered (a null-MX recipient refused, a good one accepted at
# each), every decision line names the MTA that asked (peer=ADDR), and a client outside
# policy.allow_clients (inline list plus allow_clients_file) is closed at accept, with one
# log line for a burst of such connections (rate limited).
#
# Both instances run on this host, so to be told apart they must reach the daemon from two
# addresses: Postfix A connects straight from 127.0.0.1; Postfix B goes through a small TCP
# relay whose outgoing side is bound to 127.0.0.2 (Postfix's policy client cannot choose its
# source address).  The stranger connects from 127.0.0.3.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

need_bin mxsane-policyd
POLICYD="$BUILD_DIR/mxsane-policyd"
start_knot || { not_ok "knotd starts" "see the log above"; finish; }

USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u nobody:nogroup)
chmod o+rx "$T_DIR"
ALLOW="$T_DIR/policy-allow-clients"
printf '# the second MTA of the fleet\n127.0.0.2\n' >"$ALLOW"
CONF="$T_DIR/mxsane.conf"
printf '%s\n' \
	"resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\" ]; timeout_ms = 2000; };" \
	"policy = { allow_clients = [ \"127.0.0.1\" ]; allow_clients_file = \"$ALLOW\"; };" >"$CONF"
chmod o+r "$CONF" "$ALLOW"

start_on_free_port policyd "$POLICYD" -f "${USER_ARGS[@]}" -c "$CONF" -l "inet:127.0.0.1:{PORT}" ||
	{ not_ok "mxsane-policyd starts" "$(cat "$T_DIR/policyd.log")"; finish; }
PPORT=$BG_PORT

# The relay: listens on 127.0.0.1:PORT, connects to the daemon from 127.0.0.2.
start_on_free_port relay "$PY" -c '
import socket, sys, threading
lport, dport = int(sys.argv[1]), int(sys.argv[2])
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport))
ls.listen(64)
while True:
    c, _ = ls.accept()
    u = socket.socket()
    u.bind(("127.0.0.2", 0))
    u.connect(("127.0.0.1", dport))
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    threading.Thread(target=pump, args=(u, c), daemon=True).start()
' "{PORT}" "$PPORT" || { not_ok "relay starts" "$(cat "$T_DIR/relay.log")"; finish; }
RPORT=$BG_PORT

# A is configured as README's fleet section says (per-service settings, try limit).
start_postfix \
	"smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service { inet:127.0.0.1:$PPORT, timeout=10s, default_action=DUNNO }" \
	"smtpd_policy_service_try_limit = 2" "smtpd_policy_service_default_action = DUNNO" ||
	{ not_ok "postfix A starts" "see above"; finish; }
A_PORT=$POSTFIX_PORT A_LOG=$POSTFIX_LOG
POSTFIX_INSTANCE=b start_postfix \
	"smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service inet:127.0.0.1:$RPORT" ||
	{ not_ok "postfix B starts" "see above"; finish; }
B_PORT=$POSTFIX_PORT B_LOG=$POSTFIX_LOG
[ "$A_PORT" != "$B_PORT" ] && [ "$A_LOG" != "$B_LOG" ] &&
	ok "two isolated Postfix instances run side by side (ports $A_PORT and $B_PORT)" ||
	not_ok "two instances" "A $A_PORT $A_LOG, B $B_PORT $B_LOG"

RA="Recipient address rejected"
TA=$(SMTP_PORT=$A_PORT smtp_send s@ok-mx.mxs.test alice@null-mx.mxs.test carol@ok-mx.mxs.test)
TB=$(SMTP_PORT=$B_PORT smtp_send s@ok-mx.mxs.test bob@null-mx.mxs.test dave@ok-mx.mxs.test)
assert_eq "Postfix A: the policy service refuses a null-MX recipient" \
	"556 5.1.0 <alice@null-mx.mxs.test>: $RA: <alice@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(smtp_reply "$TA" RCPT alice@null-mx.mxs.test)"
assert_eq "Postfix A: a good recipient is accepted" "250 2.1.5 Ok" "$(smtp_reply "$TA" RCPT carol@ok-mx.mxs.test)"
assert_eq "Postfix B: the policy service refuses a null-MX recipient" \
	"556 5.1.0 <bob@null-mx.mxs.test>: $RA: <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$(smtp_reply "$TB" RCPT bob@null-mx.mxs.test)"
assert_eq "Postfix B: a good recipient is accepted" "250 2.1.5 Ok" "$(smtp_reply "$TB" RCPT dave@ok-mx.mxs.test)"

sleep 0.3
LOG="$T_DIR/policyd.log"
for r in alice carol; do
	assert_match "decision line for $r@ (asked by A) names peer=127.0.0.1" \
		"peer=127\.0\.0\.1 .*recipient=$r@" "$(grep "recipient=$r@" "$LOG" | grep 'role=recipient')"
done
for r in bob dave; do
	assert_match "decision line for $r@ (asked by B) names peer=127.0.0.2" \
		"peer=127\.0\.0\.2 .*recipient=$r@" "$(grep "recipient=$r@" "$LOG" | grep 'role=recipient')"
done
n=$(grep -c 'verdict=' "$LOG")
m=$(grep 'verdict=' "$LOG" | grep -c ' peer=127\.0\.0\.[12] ')
[ "$n" -gt 0 ] && [ "$n" = "$m" ] && ok "every decision line ($n) names its peer" ||
	not_ok "every decision line names its peer" "$m of $n: $(grep 'verdict=' "$LOG" | grep -v ' peer=' | head -n 2)"

# ---- a stranger: closed at accept, before any reply; one log line for a burst
"$PY" -c '
import socket, sys
port = int(sys.argv[1])
req = b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=\nrecipient=x@null-mx.mxs.test\n\n"
got = []
for i in range(30):
    s = socket.socket()
    s.bind(("127.0.0.3", 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(req)
        got.append(s.recv(4096))
    except OSError as e:
        got.append(b"")
    s.close()
print("replies=%d" % sum(1 for g in got if g))
' "$PPORT" >"$T_DIR/stranger.out" 2>&1
assert_eq "a client outside allow_clients gets no answer (30 tries)" "replies=0" "$(cat "$T_DIR/stranger.out")"
sleep 0.2
refused=$(grep -c 'refused: not in policy.allow_clients' "$LOG")
assert_match "the refusal is logged, naming the stranger" \
	'connection from 127\.0\.0\.3:[0-9]+ refused: not in policy\.allow_clients' \
	"$(grep 'refused: not in policy.allow_clients' "$LOG" | head -n 1)"
[ "$refused" -ge 1 ] && [ "$refused" -le 2 ] &&
	ok "30 refused connections in a burst: $refused log line(s) (at most one a second)" ||
	not_ok "refusals rate limited" "$refused lines"
# the members of the fleet are still served after the stranger
TA=$(SMTP_PORT=$A_PORT smtp_send s@ok-mx.mxs.test erin@null-mx.mxs.test)
assert_match "Postfix A is still answered" '^556 5\.1\.0 ' "$(smtp_reply "$TA" RCPT erin@null-mx.mxs.test)"

pf_err=$(grep -hE 'warning: .*policy' "$A_LOG" "$B_LOG" | head -n 3)
[ -z "$pf_err" ] && ok "neither Postfix logged a policy service warning" || not_ok "postfix policy warnings" "$pf_err"
if grep -qE 'Sanitizer|runtime error' "$LOG"; then
	not_ok "no sanitizer findings" "$(grep -h -m3 -E 'Sanitizer|runtime error' "$LOG")"
fi
[ "$_T_FAIL" -gt 0 ] && { echo "---- policyd log"; tail -n 30 "$LOG"; }
finish

#!/usr/bin/env bash
# One request, one budget: the sender and the recipient checks of a policy request share
# resolver.timeout_ms, so a slow sender domain followed by a recipient whose DNS never answers
# is still answered (451 4.4.3) within the budget, not after twice the budget.
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
start_faultdns
cat >"$T_DIR/c.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$FAULT_PORT" ]; timeout_ms = 1500; };
EOC
ask() { # sender recipient -> prints reply and elapsed ms
	local t0 t1 out
	t0=$(now_ms)
	out=$(printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=%s\nrecipient=%s\n\n' "$1" "$2" |
		timeout 10 "$BUILD/mxsane-policyd" -s -u root -c "$T_DIR/c.conf" 2>>"$T_DIR/policyd.err")
	t1=$(now_ms)
	printf '%s\n%s\n' "$(head -n 1 <<<"$out")" $((t1 - t0))
}
res=$(ask a@slow1200.fault.test b@timeout.fault.test)
reply=$(sed -n 1p <<<"$res") ms=$(sed -n 2p <<<"$res")
assert_match "slow sender + silent recipient: tempfail" '^action=451 4\.4\.3 <b@timeout\.fault\.test>' "$reply"
# budget 1500 ms + 10% + process start-up slack; twice the budget would be >= 2700 ms
if [ "$ms" -le 2000 ]; then ok "answered within the budget ($ms ms)"; else not_ok "answered within the budget" "$ms ms"; fi

res=$(ask a@slow1200.fault.test b@ok.fault.test)
assert_eq "slow sender, fine recipient: DUNNO" "action=DUNNO" "$(sed -n 1p <<<"$res")"
finish

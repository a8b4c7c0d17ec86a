#!/usr/bin/env bash
# One request, one budget: the sender and the recipient checks of a policy request share
# resolver.timeout_ms, so a slow sender domain followed by a recipient whose DNS never answers
# is still answered (451 4.4.3) within the budget, not after twice the budget.
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
start_faultdns
start_knot
cat >"$T_DIR/c.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$FAULT_PORT" ]; timeout_ms = 1500; };
EOC
cat >"$T_DIR/knot.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 1500; };
EOC
ask() { # sender recipient -> prints reply and elapsed ms
	local t0 t1 out
	t0=$(now_ms)
	out=$(printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=%s\nrecipient=%s\n\n' "$1" "$2" |
		timeout 10 "$BUILD/mxsane-policyd" -s -u root -c "$T_DIR/${CONF:-c}.conf" 2>>"$T_DIR/policyd.err")
	t1=$(now_ms)
	printf '%s\n%s\n' "$(head -n 1 <<<"$out")" $((t1 - t0))
}
res=$(ask a@slow1200.fault.test b@timeout.fault.test)
reply=$(sed -n 1p <<<"$res") ms=$(sed -n 2p <<<"$res")
assert_match "slow sender + silent recipient: tempfail" '^action=451 4\.4\.3 <b@timeout\.fault\.test>' "$reply"
# budget 1500 ms + 10% + process start-up slack; twice the budget would be >= 2700 ms
limit=$((1500 + 150 + $(slack_ms 350)))
if [ "$ms" -le "$limit" ]; then ok "answered within the budget ($ms ms)"; else not_ok "answered within the budget" "$ms ms > $limit ms"; fi

res=$(ask a@slow1200.fault.test b@ok.fault.test)
assert_eq "slow sender, fine recipient: DUNNO" "action=DUNNO" "$(sed -n 1p <<<"$res")"

# Queries: the daemons ask A first and AAAA only when A gives nothing usable.
aaaa=$(grep -ci 'good\.fault\.test.*AAAA\|AAAA.*good\.fault\.test' "$T_DIR/faultdns.log")
a=$(grep -ci 'good\.fault\.test.*[^A]A\b\|\bA\b.*good\.fault\.test' "$T_DIR/faultdns.log")
assert_eq "usable IPv4 address: no AAAA query" 0 "$aaaa"
[ "$a" -ge 1 ] && ok "the A query was sent" || not_ok "the A query was sent" "$(cat "$T_DIR/faultdns.log")"
# IPv6-only hosts are still found: AAAA is asked when A has no usable address
res=$(CONF=knot ask a@ok-mx.mxs.test b@implicit-aaaa.mxs.test)
assert_eq "AAAA-only implicit MX: ok" "action=DUNNO" "$(sed -n 1p <<<"$res")"
res=$(CONF=knot ask a@ok-mx.mxs.test b@mx-bogus-v6.mxs.test)
assert_match "only bogus IPv6 behind an empty A: broken" '^action=450 4\.4\.4' "$(sed -n 1p <<<"$res")"
res=$(CONF=knot ask a@ok-mx.mxs.test b@mx-target-nx.mxs.test)
assert_match "target NXDOMAIN (no AAAA asked): broken" '^action=450 4\.4\.4' "$(sed -n 1p <<<"$res")"
finish

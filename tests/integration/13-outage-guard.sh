#!/usr/bin/env bash
# Resolver outage guard (resilience.on_dns_outage): when more than outage_ratio of the last
# outage_window checks ended in dns_error, "accept" lets mail through (action warn, logged
# loudly) instead of tempfailing everything; it returns to normal on its own once lookups
# succeed again.  The default ("tempfail") keeps tempfailing.  Driven through mxsane-check,
# which runs every NAME through one engine, against the fault-injecting DNS server.
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
start_faultdns

conf() { # on_dns_outage
	cat >"$T_DIR/$1.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$FAULT_PORT" ]; timeout_ms = 1500; };
cache = { error_ttl = 0; };
resilience = { on_dns_outage = "$1"; outage_ratio = 0.5; outage_window = 20; };
EOC
}
conf accept
conf tempfail

# 10 failures (fills the minimum sample, all errors), 2 more failures, then 30 good names:
# the share of errors falls below 0.5 after enough good ones, and the guard switches off.
names=()
for i in $(seq 1 12); do names+=(servfail.fault.test); done
for i in $(seq 1 30); do names+=("user$i@ok.fault.test"); done
names+=(servfail.fault.test)

run() { "$BUILD/mxsane-check" -c "$T_DIR/$1.conf" -j "${names[@]}" >"$T_DIR/$1.out" 2>"$T_DIR/$1.err"; }
line() { sed -n "${2}p" "$T_DIR/$1.out"; }
action() { line "$1" "$2" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["verdict"], d["action"], d["code"])'; }

run accept
assert_eq "accept: 1st servfail is tempfailed (no sample yet)" "dns_error tempfail 451" "$(action accept 1)"
assert_eq "accept: 9th servfail still tempfailed" "dns_error tempfail 451" "$(action accept 9)"
assert_eq "accept: 10th servfail: outage detected, let through" "dns_error warn None" "$(action accept 10)"
assert_eq "accept: 12th servfail let through" "dns_error warn None" "$(action accept 12)"
assert_match "accept: header says the rejection was not applied" 'not applied: DNS outage' "$(line accept 12)"
assert_eq "accept: ok domains stay ok" "ok accept None" "$(action accept 13)"
assert_eq "accept: after recovery a servfail is tempfailed again" "dns_error tempfail 451" "$(action accept 43)"
assert_match "accept: loud log line when the outage starts" 'DNS outage: 10 of the last 10 checks failed.*ACCEPTING MAIL' "$(cat "$T_DIR/accept.err")"
assert_match "accept: log line when it ends" 'DNS outage over' "$(cat "$T_DIR/accept.err")"
assert_eq "accept: exit 2 (some tempfail, no reject)" 2 "$(run accept; echo $?)"

run tempfail
assert_eq "tempfail (default): 12th servfail still tempfailed" "dns_error tempfail 451" "$(action tempfail 12)"
for i in $(seq 1 43); do
	case $(action tempfail "$i") in *" 5"*) not_ok "tempfail: never a 5xx" "line $i: $(line tempfail "$i")" ;; esac
done
ok "no 5xx for any dns_error"
finish

#!/usr/bin/env bash
# mxsane-check --all-ns: the zone's name servers found through the resolver, every address of
# each asked directly without recursion for the domain's MX set and the zone's SOA serial;
# servers that disagree (MX set, serial), are lame or do not answer are reported, and make
# the exit status 3.  Two knot instances on 127.0.0.2 and 127.0.0.3 (one port) serve prop.test
# with different serials and MX sets and same.test identically; lame.test and silent.test are
# served by the first only, with a second NS on 127.0.0.3 (REFUSED: lame) or 127.0.0.9 (nobody).
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
need_bin mxsane-check
need_cmd knotd kdig

zone() { # dir name serial body...
	local dir=$1 name=$2 serial=$3
	shift 3
	{
		echo "\$ORIGIN $name."
		echo "@ 600 IN SOA ns1.$name. hostmaster.$name. $serial 3600 900 604800 300"
		printf '%s\n' "$@"
	} >"$dir/$name.zone"
}
mkdir -p "$T_DIR/a/zones" "$T_DIR/b/zones" "$T_DIR/a/db" "$T_DIR/b/db"
two_ns=("@ 3600 IN NS ns1" "@ 3600 IN NS ns2" "ns1 3600 IN A 127.0.0.2" "ns2 3600 IN A 127.0.0.3")
zone "$T_DIR/a/zones" prop.test 2 "${two_ns[@]}" "changed 3600 IN MX 10 new" "new 3600 IN A 192.0.2.1" \
	"old 3600 IN A 192.0.2.2"
zone "$T_DIR/b/zones" prop.test 1 "${two_ns[@]}" "changed 3600 IN MX 10 old" "new 3600 IN A 192.0.2.1" \
	"old 3600 IN A 192.0.2.2"
for d in a b; do
	zone "$T_DIR/$d/zones" same.test 5 "${two_ns[@]}" "@ 3600 IN MX 10 mx" "@ 3600 IN MX 20 mx2" \
		"mx 3600 IN A 192.0.2.3" "mx2 3600 IN A 192.0.2.4"
done
zone "$T_DIR/a/zones" lame.test 1 "${two_ns[@]}" "@ 3600 IN MX 10 mx" "mx 3600 IN A 192.0.2.5"
zone "$T_DIR/a/zones" silent.test 1 "@ 3600 IN NS ns1" "@ 3600 IN NS ns9" "ns1 3600 IN A 127.0.0.2" \
	"ns9 3600 IN A 127.0.0.9" "@ 3600 IN MX 10 mx" "mx 3600 IN A 192.0.2.6"

knot_at() { # dir address port
	local dir=$1 addr=$2 port=$3 z
	{
		echo "server:"
		echo "    rundir: \"$dir\""
		echo "    pidfile: \"$dir/knot.pid\""
		echo "    udp-workers: 1"
		echo "    tcp-workers: 1"
		echo "    background-workers: 1"
		echo "    listen: $addr@$port"
		echo "control:"
		echo "    listen: \"$dir/knot.sock\""
		echo "database:"
		echo "    storage: \"$dir/db\""
		echo "log:"
		echo "  - target: \"$dir/knot.log\""
		echo "    any: info"
		echo "template:"
		echo "  - id: default"
		echo "    storage: \"$dir/zones\""
		echo "    file: \"%s.zone\""
		echo "    zonefile-sync: -1"
		echo "    journal-content: none"
		echo "zone:"
		for z in "$dir"/zones/*.zone; do
			z=${z##*/}
			echo "  - domain: ${z%.zone}"
		done
	} >"$dir/knot.conf"
	start_bg "knot-$addr" timeout -k 5 300 knotd -c "$dir/knot.conf"
}
up() { # address port zone
	local i
	for i in $(seq 50); do
		kdig @"$1" -p "$2" +retry=0 +timeout=1 +short SOA "$3" 2>/dev/null | grep -q . && return 0
		sleep 0.2
	done
	return 1
}
started=
for try in 1 2 3; do
	port=$(free_port)
	knot_at "$T_DIR/a" 127.0.0.2 "$port"
	pa=$BG_PID
	knot_at "$T_DIR/b" 127.0.0.3 "$port"
	pb=$BG_PID
	if up 127.0.0.2 "$port" prop.test && up 127.0.0.3 "$port" prop.test; then
		started=1
		break
	fi
	stop_pid "$pa"
	stop_pid "$pb"
done
[ -n "$started" ] || { cat "$T_DIR"/*/knot.log >&2; echo "knot instances do not start" >&2; exit 1; }

cat >"$T_DIR/mxsane.conf" <<EOC
resolver = { servers = [ "127.0.0.2:$port" ]; timeout_ms = 1500; };
bogus_networks = [ ];
EOC
chk() { "$BUILD_DIR/mxsane-check" -c "$T_DIR/mxsane.conf" --all-ns --ns-port "$port" "$@" 2>/dev/null; }

# --- every server says the same
out=$(chk -j same.test)
rc=$?
json_fields "$out"
assert_eq "agreeing servers: exit 0" 0 "$rc"
assert_eq "agreeing: zone found" same.test "${JF[propagation.zone]}"
assert_eq "agreeing: both addresses asked" 2 "${JF[#propagation.servers]}"
assert_eq "agreeing: server 1" "ns1.same.test. 127.0.0.2 ok 5" \
	"${JF[propagation.servers.0.ns]} ${JF[propagation.servers.0.address]} ${JF[propagation.servers.0.status]} ${JF[propagation.servers.0.serial]}"
assert_eq "agreeing: server 2" "ns2.same.test. 127.0.0.3 ok 5" \
	"${JF[propagation.servers.1.ns]} ${JF[propagation.servers.1.address]} ${JF[propagation.servers.1.status]} ${JF[propagation.servers.1.serial]}"
assert_eq "agreeing: the MX set as the servers give it" "10 mx.same.test. 20 mx2.same.test." \
	"${JF[propagation.servers.1.mx]}"
assert_eq "agreeing: no problem" false "${JF[propagation.problem]}"
txt=$(chk same.test)
assert_match "agreeing, text" '\[ok\] every name server gives the same MX set and serial' "$txt"

# --- a change not yet everywhere: other MX set, other serial
out=$(chk -j changed.prop.test)
rc=$?
json_fields "$out"
assert_eq "disagreeing servers: exit 3" 3 "$rc"
assert_eq "disagreeing: verdict still from the resolver" ok "${JF[verdict]}"
assert_eq "disagreeing: zone is the parent" prop.test "${JF[propagation.zone]}"
assert_eq "disagreeing: two MX sets" 2 "${JF[propagation.mx_sets]}"
assert_eq "disagreeing: two serials" 2 "${JF[propagation.serials]}"
assert_eq "disagreeing: new server's MX" "10 new.prop.test." "${JF[propagation.servers.0.mx]}"
assert_eq "disagreeing: old server's MX" "10 old.prop.test." "${JF[propagation.servers.1.mx]}"
assert_eq "disagreeing: serials" "2 1" "${JF[propagation.servers.0.serial]} ${JF[propagation.servers.1.serial]}"
txt=$(chk changed.prop.test)
assert_eq "disagreeing, text: exit 3" 3 "$?"
assert_match "disagreeing, text: said plainly" \
	'PROPAGATION PROBLEM: the name servers do not all say the same: 2 different MX sets, 2 different serials' "$txt"
assert_match "disagreeing, text: each server" 'ns2\.prop\.test\. 127\.0\.0\.3: serial 1, MX 10 old\.prop\.test\.' "$txt"

# --- lame and silent servers
out=$(chk -j lame.test)
assert_eq "lame server: exit 3" 3 "$?"
json_fields "$out"
assert_eq "lame: one lame" 1 "${JF[propagation.lame]}"
assert_eq "lame: which" "127.0.0.3 lame" "${JF[propagation.servers.1.address]} ${JF[propagation.servers.1.status]}"
assert_match "lame: why" 'REFUSED' "${JF[propagation.servers.1.error]}"
out=$(chk -j silent.test)
assert_eq "silent server: exit 3" 3 "$?"
json_fields "$out"
assert_eq "silent: one not answering" "1 no_answer" "${JF[propagation.silent]} ${JF[propagation.servers.1.status]}"
assert_match "silent: why" 'does not answer' "${JF[propagation.servers.1.error]}"

# --- batch: one line each, the worst status
printf 'same.test\nchanged.prop.test\n' >"$T_DIR/list"
out=$(chk -f "$T_DIR/list")
rc=$?
assert_eq "batch --all-ns: exit 3" 3 "$rc"
assert_match "batch: agreeing line" '^same\.test: ok, accept.*; propagation: 2 servers agree' "$(sed -n 1p <<<"$out")"
assert_match "batch: problem line" '^changed\.prop\.test: ok, accept.*; PROPAGATION PROBLEM: 2 different MX sets' \
	"$(sed -n 2p <<<"$out")"

# --- without --all-ns nothing of this is asked
out=$("$BUILD_DIR/mxsane-check" -c "$T_DIR/mxsane.conf" -j changed.prop.test 2>/dev/null)
assert_eq "without --all-ns: exit 0" 0 "$?"
assert_eq "without --all-ns: no propagation field" "<missing>" "$(json_get "$out" propagation)"
finish

#!/usr/bin/env bash
# 10-check-verdicts.sh - mxsane-check -j against a real authoritative server (knotd on a
# loopback port) serving tests/zones: every case of tests/zones/expect.tsv gives its verdict,
# with the action, reply code, DSN and exit status of the default table, the verdict TTL where
# the row names one, and the evidence each verdict must show (evidence_rules, docs/verdicts.md);
# then the rules that need a closer look at the evidence: verdict TTL = minimum of the contributing
# TTLs, RFC 2308 negative TTL, the 40-record MX set over TCP, mixed null MX option, -s,
# bogus_networks and skip lists from the configuration, several NAMEs in one run (cache),
# exit codes 0/1/2/64/78, and hostile input that must not crash it.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-check
CHECK="$BUILD_DIR/mxsane-check"
start_knot || { not_ok "knotd starts" "see the log above"; finish; }

# conf FILE [EXTRA-LINES]: a configuration that asks our knotd only.
conf() {
	{
		echo "resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\" ]; timeout_ms = 3000; };"
		[ $# -lt 2 ] || printf '%s\n' "$2"
	} >"$1"
}
CONF="$T_DIR/mxsane.conf"
conf "$CONF"

# run ARGS...: runs mxsane-check (bounded to 30 s); sets OUT, ERR, RC, MS.
run() {
	local t0 t1
	t0=$(now_ms)
	timeout -k 5 30 "$CHECK" "$@" >"$T_DIR/out" 2>"$T_DIR/err"
	RC=$?
	t1=$(now_ms)
	MS=$((t1 - t0))
	OUT=$(cat "$T_DIR/out")
	ERR=$(cat "$T_DIR/err")
}

# Did it exit on its own?  124: killed by timeout(1) after 30 s; >= 128: killed by a signal.
exited_cleanly() {
	[ "$RC" -lt 124 ]
}

# What the default actions table gives: "action code dsn".
expected_reply() {
	case $1/$2 in
	ok/* | skipped/*) echo "accept null null" ;;
	mx_cname/*) echo "warn null null" ;;
	null_mx/sender) echo "reject 550 5.7.27" ;;
	null_mx/recipient) echo "reject 556 5.1.10" ;;
	nxdomain/sender | no_mail_host/sender) echo "reject 550 5.1.8" ;;
	nxdomain/recipient | no_mail_host/recipient) echo "reject 550 5.1.2" ;;
	broken_mx/sender) echo "tempfail 450 4.1.8" ;;
	broken_mx/recipient) echo "tempfail 450 4.4.4" ;;
	dns_error/*) echo "tempfail 451 4.4.3" ;;
	*) echo "? ? ?" ;;
	esac
}
exit_for_action() {
	case $1 in accept | warn) echo 0 ;; reject) echo 1 ;; tempfail) echo 2 ;; *) echo "?" ;; esac
}

# Normalised domain expected for some of the spellings in expect.tsv.
declare -A DOMAIN=(
	["ok-mx.mxs.test."]=ok-mx.mxs.test
	["Bob@OK-MX.MXS.TEST."]=ok-mx.mxs.test
	["<@relay.test,@other.test:bob@ok-mx.mxs.test>"]=ok-mx.mxs.test
	['"a@b"@ok-mx.mxs.test']=ok-mx.mxs.test
	["MIXED-case.MXS.test"]=mixed-case.mxs.test
	["user@bücher.mxs.test"]=xn--bcher-kva.mxs.test
	["bücher.mxs.test"]=xn--bcher-kva.mxs.test
)

# check_one NAME ROLE VERDICT [CONF]: one NAME, the verdict and everything the default table
# derives from it.  Leaves the parsed object in JF.
check_one() {
	local name=$1 role=$2 want=$3 cf=${4:-$CONF} t="$1 ($2)" exp act code dsn
	run -c "$cf" -r "$role" -j "$name"
	if ! exited_cleanly; then
		not_ok "$t: runs" "exit status $RC; stderr: $ERR"
		JF=()
		return
	fi
	if [ "$(printf '%s\n' "$OUT" | grep -c .)" -ne 1 ]; then
		not_ok "$t: one JSON line" "got: $OUT / stderr: $ERR"
		JF=()
		return
	fi
	json_fields "$OUT"
	if [ -n "${JF[_error]:-}" ]; then
		not_ok "$t: JSON" "${JF[_error]}: $OUT"
		return
	fi
	if [ "${JF[verdict]:-}" = "$want" ]; then
		ok "$t: verdict $want"
	else
		not_ok "$t: verdict" "expected $want, got ${JF[verdict]:-<missing>} (${JF[reason]:-no reason})"
	fi
	read -r act code dsn <<<"$(expected_reply "$want" "$role")"
	if [ "${JF[verdict]:-}" = "$want" ]; then
		assert_eq "$t: action code dsn" "$act $code $dsn" \
			"${JF[action]:-<missing>} ${JF[code]:-<missing>} ${JF[dsn]:-<missing>}"
		assert_eq "$t: exit status" "$(exit_for_action "$act")" "$RC"
		if [ "$code" != null ]; then
			assert_match "$t: reply" "^$code ${dsn//./\\.} " "${JF[reply]:-<missing>}"
		else
			assert_eq "$t: reply" null "${JF[reply]:-<missing>}"
		fi
	fi
	assert_eq "$t: name echoed" "$name" "${JF[name]:-<missing>}"
	assert_eq "$t: role" "$role" "${JF[role]:-<missing>}"
	assert_eq "$t: fresh process, cache miss" miss "${JF[cache]:-<missing>}"
	assert_match "$t: ttl is a number" '^[0-9]+$' "${JF[ttl]:-<missing>}"
	[ -z "${DOMAIN[$name]:-}" ] || assert_eq "$t: domain" "${DOMAIN[$name]}" "${JF[domain]:-<missing>}"
	evidence_rules "$t"
}

# evidence_rules T: what each verdict claims must be visible in its own evidence (the parsed
# object in JF), whatever the zone data behind it, so that every case, including cases added
# later, is held to the rule and not only to its row.
#   ok           a usable MX host that is not an alias
#   mx_cname     no such host, but a usable one reached through a CNAME
#   broken_mx    hosts to judge, and every one of them was looked at (no temporary failure) and
#                has a problem: the verdict needs them all found unusable
#   null_mx      the evidence shows the MX 0 . it rests on
#   nxdomain     nothing to show: no MX host
#   no_mail_host the implicit MX (the domain itself) without a single address: bogus addresses
#                are local policy, not DNS proof, and make it broken_mx
evidence_rules() {
	local t=$1 v=${JF[verdict]:-} n=${JF[#mx]:-0} i good=0 via_alias=0 looked=0 nul=0
	for ((i = 0; i < n; i++)); do
		if [ "${JF[mx.$i.usable]:-}" = true ]; then
			[ "${JF[mx.$i.alias]:-}" = true ] && via_alias=$((via_alias + 1)) || good=$((good + 1))
		fi
		[ "${JF[mx.$i.temporary]:-}" = false ] && [ "${JF[mx.$i.problem]:-null}" != null ] &&
			looked=$((looked + 1))
		[ "${JF[mx.$i.pref]:-}" = 0 ] && [ "${JF[mx.$i.host]:-}" = . ] && nul=$((nul + 1))
	done
	case $v in
	ok) [ "$good" -ge 1 ] && ok "$t: rule: ok shows a usable host that is not an alias" ||
		not_ok "$t: rule: ok shows a usable host that is not an alias" "mx: ${JF[mx]:-}" ;;
	mx_cname) [ "$good" -eq 0 ] && [ "$via_alias" -ge 1 ] &&
		ok "$t: rule: mx_cname shows only hosts reached through an alias" ||
		not_ok "$t: rule: mx_cname shows only hosts reached through an alias" "mx: ${JF[mx]:-}" ;;
	broken_mx) [ "$n" -ge 1 ] && [ "$looked" -eq "$n" ] &&
		ok "$t: rule: broken_mx shows every host looked at and unusable" ||
		not_ok "$t: rule: broken_mx shows every host looked at and unusable" "mx: ${JF[mx]:-}" ;;
	null_mx) [ "$nul" -ge 1 ] && ok "$t: rule: null_mx shows MX 0 ." ||
		not_ok "$t: rule: null_mx shows MX 0 ." "mx: ${JF[mx]:-}" ;;
	nxdomain) assert_eq "$t: rule: nxdomain has no MX host" 0 "$n" ;;
	no_mail_host) assert_eq "$t: rule: no_mail_host is the implicit MX without a single address" \
		"true 1 0" "${JF[implicit_mx]:-} $n ${JF[#mx.0.addresses]:-?}" ;;
	esac
}

# The verdict only (for the extra cases): sets JF, RC.
verdict_of() {
	local cf=$1 name=$2
	shift 2
	run -c "$cf" -r recipient -j "$@" "$name"
	json_fields "$OUT"
	V="${JF[verdict]:-<missing: rc=$RC ${JF[_error]:-} $ERR>}"
}

echo "# knotd on 127.0.0.1:$KNOT_PORT (v6: $KNOT_V6), log $T_DIR/knot/knot.log"

# ---- 1. every case of expect.tsv ------------------------------------------------------------
n=0
while IFS=$'\t' read -r name role want note ttl basis; do
	case $name in '#'* | '') continue ;; esac
	n=$((n + 1))
	echo "# $name ($role): $note"
	[ "${basis:--}" = - ] || echo "#   basis: $basis"
	check_one "$name" "$role" "$want"
	# the verdict lives no longer than the shortest-lived answer behind it (RFC 1035 3.2.1,
	# RFC 2308 5): only where the row says which one that is
	[ "${ttl:--}" = - ] || [ "${JF[verdict]:-}" != "$want" ] ||
		assert_eq "$name ($role): verdict TTL" "$ttl" "${JF[ttl]:-<missing>}"
done <"$MXS_TOP/tests/zones/expect.tsv"
[ "$n" -gt 50 ] && ok "expect.tsv has $n cases" || not_ok "expect.tsv read" "only $n cases"

# ---- 2. evidence ------------------------------------------------------------------------------
check_one ok-mx.mxs.test recipient ok
assert_eq "ok-mx: one MX" 1 "${JF[#mx]:-<missing>}"
assert_eq "ok-mx: preference" 10 "${JF[mx.0.pref]:-<missing>}"
assert_match "ok-mx: exchange" '^mail\.ok-mx\.mxs\.test\.?$' "${JF[mx.0.host]:-<missing>}"
assert_match "ok-mx: IPv4 address listed" '"1\.2\.3\.4"' "${JF[mx.0.addresses]:-<missing>}"
assert_match "ok-mx: IPv6 address listed" '"2a00:1450:4001::1"' "${JF[mx.0.addresses]:-<missing>}"
assert_eq "ok-mx: no problem" null "${JF[mx.0.problem]:-<missing>}"
assert_eq "ok-mx: not an alias" false "${JF[mx.0.alias]:-<missing>}"

check_one mx-one-broken.mxs.test recipient ok
assert_eq "mx-one-broken: both MX in the evidence" 2 "${JF[#mx]:-<missing>}"
for i in 0 1; do
	case ${JF[mx.$i.host]:-} in
	nowhere.mxs.test*) assert_match "mx-one-broken: broken target has a problem" '.' \
		"$([ "${JF[mx.$i.problem]}" = null ] || echo "${JF[mx.$i.problem]}")" ;;
	mail.ok-mx.mxs.test*) assert_eq "mx-one-broken: usable target has none" null "${JF[mx.$i.problem]}" ;;
	*) not_ok "mx-one-broken: mx.$i.host" "unexpected '${JF[mx.$i.host]:-<missing>}'" ;;
	esac
done

check_one mx-bogus-v4.mxs.test recipient broken_mx
for i in 0 1 2; do
	[ "${JF[mx.$i.problem]:-null}" != null ] && ok "mx-bogus-v4: mx.$i has a problem" ||
		not_ok "mx-bogus-v4: mx.$i has a problem" "${JF[mx.$i]:-<missing>}"
done

check_one mx-cname.mxs.test recipient mx_cname
assert_eq "mx-cname: target flagged as alias" true "${JF[mx.0.alias]:-<missing>}"

check_one mx-cname-and-normal.mxs.test recipient ok
assert_eq "mx-cname-and-normal: two MX" 2 "${JF[#mx]:-<missing>}"
for i in 0 1; do
	case ${JF[mx.$i.host]:-} in
	alias-host.mxs.test*)
		assert_eq "mx-cname-and-normal: alias target flagged" true "${JF[mx.$i.alias]:-<missing>}"
		[ "${JF[mx.$i.problem]:-null}" != null ] || [ "${JF[#notes]:-0}" -gt 0 ] &&
			ok "mx-cname-and-normal: the alias is explained (problem or note)" ||
			not_ok "mx-cname-and-normal: the alias is explained" "no problem, no note: $OUT" ;;
	mail.ok-mx.mxs.test*)
		assert_eq "mx-cname-and-normal: normal target not an alias" false "${JF[mx.$i.alias]:-<missing>}" ;;
	*) not_ok "mx-cname-and-normal: mx.$i.host" "unexpected '${JF[mx.$i.host]:-<missing>}'" ;;
	esac
done

check_one null-mx-mixed.mxs.test recipient ok
assert_match "null-mx-mixed: a note about the mixed set" '^[1-9]' "${JF[#notes]:-0}"

check_one cust1.mxs.test recipient ok
assert_eq "cust1: five provider MX" 5 "${JF[#mx]:-<missing>}"
assert_eq "cust1: lowest preference first" 1 "${JF[mx.0.pref]:-<missing>}"

check_one multi.corner.test recipient ok
assert_eq "multi: one MX host" 1 "${JF[#mx]:-<missing>}"
assert_eq "multi: its three A and two AAAA listed" 5 "${JF[#mx.0.addresses]:-<missing>}"
check_one privv4.corner.test recipient ok
assert_eq "privv4: the private A, and only it, shown as bogus" '["10.1.2.3"]' \
	"${JF[mx.0.bogus]:-<missing>}"
check_one xchain.corner.test recipient ok
assert_eq "xchain: canonical name is where the chain ends" good.chain.test \
	"${JF[canonical]:-<missing>}"
check_one shop.dn.corner.test recipient ok
assert_eq "shop.dn: canonical name is the DNAME's target" shop.dtarget.chain.test \
	"${JF[canonical]:-<missing>}"

# ---- 3. TTLs ----------------------------------------------------------------------------------
# verdict TTL = minimum of the contributing records' TTLs
check_one ok-mx.mxs.test recipient ok
assert_eq "ttl: all records 3600" 3600 "${JF[ttl]:-<missing>}"
check_one ttl-min.mxs.test recipient ok
assert_eq "ttl: MX 3600, A 1200, AAAA 900 -> 900" 900 "${JF[ttl]:-<missing>}"
check_one ttl-mx-low.mxs.test recipient ok
assert_eq "ttl: MX 120, A/AAAA 86400 -> 120" 120 "${JF[ttl]:-<missing>}"
check_one short-ttl.mxs.test recipient ok
assert_eq "ttl: all records 2 -> 2" 2 "${JF[ttl]:-<missing>}"
# RFC 2308: negative answers live min(SOA TTL, SOA MINIMUM)
check_one nonexistent.mxs.test recipient nxdomain
assert_eq "negative ttl: NXDOMAIN, SOA TTL 600, MINIMUM 300 -> 300" 300 "${JF[ttl]:-<missing>}"
check_one gone.provider.test recipient nxdomain
assert_eq "negative ttl: NXDOMAIN, SOA TTL 120, MINIMUM 3600 -> 120" 120 "${JF[ttl]:-<missing>}"
check_one no-mail-host.mxs.test recipient no_mail_host
assert_eq "negative ttl: NODATA for MX, A and AAAA -> 300" 300 "${JF[ttl]:-<missing>}"
check_one cname-ext-nx.mxs.test recipient nxdomain
assert_eq "negative ttl: CNAME 3600 to NXDOMAIN in alias.test (MINIMUM 60) -> 60" 60 "${JF[ttl]:-<missing>}"

# ---- 4. 40 MX records: only over TCP ------------------------------------------------------------
flags=$(kdig @127.0.0.1 -p "$KNOT_PORT" +retry=0 +timeout=1 +noedns +ignore MX big-mx.mxs.test |
	grep '^;; Flags')
assert_match "big-mx: UDP answer without EDNS is truncated (precondition)" ' tc ' "$flags"
check_one big-mx.mxs.test recipient ok
# Checking only the most preferred N hosts is a legitimate bound, if the evidence says so.
if [ "${JF[#mx]:-0}" = 40 ]; then
	ok "big-mx: all 40 MX in the evidence"
elif [ "${JF[#mx]:-0}" -ge 5 ] && [[ ${JF[notes]:-} =~ 40 ]]; then
	ok "big-mx: ${JF[#mx]} of 40 MX checked, and a note says so: ${JF[notes]}"
else
	not_ok "big-mx: MX in the evidence" "${JF[#mx]:-<missing>} of 40 and no note about the rest"
fi
assert_eq "big-mx: most preferred first" "1 mx-01.big-mx.mxs.test." "${JF[mx.0.pref]:-} ${JF[mx.0.host]:-}"

# ---- 5. mixed null MX as null_mx ------------------------------------------------------------
conf "$T_DIR/mixed.conf" 'checks = { mixed_null_mx = "null_mx"; };'
check_one null-mx-mixed.mxs.test recipient null_mx "$T_DIR/mixed.conf"
check_one null-mx.mxs.test sender null_mx "$T_DIR/mixed.conf"
check_one ok-mx.mxs.test recipient ok "$T_DIR/mixed.conf"

# ---- 6. -s overrides resolver.servers -------------------------------------------------------
dead=$(free_port)
printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = 1000; };\n' "$dead" >"$T_DIR/dead.conf"
verdict_of "$T_DIR/dead.conf" ok-mx.mxs.test
assert_eq "servers from the config are used (nothing on port $dead)" "dns_error 2" "$V $RC"
verdict_of "$T_DIR/dead.conf" ok-mx.mxs.test -s "127.0.0.1:$KNOT_PORT"
assert_eq "-s 127.0.0.1:PORT overrides the config" "ok 0" "$V $RC"
if [ "$KNOT_V6" = 1 ]; then
	verdict_of "$T_DIR/dead.conf" ok-mx.mxs.test -s "[::1]:$KNOT_PORT"
	assert_eq "-s [::1]:PORT" "ok 0" "$V $RC"
fi

# ---- 7. bogus_networks replaces the built-in list ---------------------------------------------
conf "$T_DIR/bogus.conf" 'bogus_networks = [ "127.0.0.0/8", "::1/128" ];'
verdict_of "$T_DIR/bogus.conf" mx-bogus-priv.mxs.test
assert_eq "bogus_networks without 10/8: 10.0.0.1 is usable" ok "$V"
verdict_of "$T_DIR/bogus.conf" implicit-bogus.mxs.test
assert_eq "bogus_networks without 10/8: implicit MX with 10.0.0.1 is usable" ok "$V"
verdict_of "$T_DIR/bogus.conf" mx-bogus-mapped.mxs.test
assert_eq "bogus_networks: ::ffff:127.0.0.1 judged by 127.0.0.1" broken_mx "$V"
verdict_of "$T_DIR/bogus.conf" mx-bogus-and-good.mxs.test
assert_eq "bogus_networks: loopback target still bogus, other usable" ok "$V"

# ---- 8. skip lists --------------------------------------------------------------------------
conf "$T_DIR/skip.conf" 'skip = { domains = [ "nonexistent.mxs.test", ".skipped.mxs.test" ]; };'
verdict_of "$T_DIR/skip.conf" nonexistent.mxs.test
assert_eq "skip.domains: listed domain" "skipped 0" "$V $RC"
verdict_of "$T_DIR/skip.conf" user@deep.down.skipped.mxs.test
assert_eq "skip.domains: .skipped.mxs.test covers subdomains" "skipped 0" "$V $RC"
verdict_of "$T_DIR/skip.conf" skipped.mxs.test
assert_eq "skip.domains: .skipped.mxs.test is not skipped.mxs.test itself" nxdomain "$V"

# ---- 9. several NAMEs in one run ------------------------------------------------------------
run -c "$CONF" -r recipient -j ok-mx.mxs.test null-mx.mxs.test mx-target-nx.mxs.test
assert_eq "3 NAMEs: 3 JSON lines" 3 "$(printf '%s\n' "$OUT" | grep -c .)"
v=""
while IFS= read -r line; do
	json_fields "$line"
	v="$v ${JF[name]:-?}=${JF[verdict]:-?}"
done <<<"$OUT"
assert_eq "3 NAMEs: in order" " ok-mx.mxs.test=ok null-mx.mxs.test=null_mx mx-target-nx.mxs.test=broken_mx" "$v"
run -c "$CONF" -r recipient -j short-ttl.mxs.test short-ttl.mxs.test
json_fields "$(printf '%s\n' "$OUT" | sed -n 1p)"
first=${JF[cache]:-?}
json_fields "$(printf '%s\n' "$OUT" | sed -n 2p)"
assert_eq "same NAME twice: second answer from the cache" "miss hit ok" "$first ${JF[cache]:-?} ${JF[verdict]:-?}"

# ---- 10. exit status ------------------------------------------------------------------------
run -c "$CONF" -j ok-mx.mxs.test mx-cname.mxs.test
assert_eq "exit 0: ok and warn" 0 "$RC"
run -c "$CONF" -j null-mx.mxs.test mx-target-nx.mxs.test ok-mx.mxs.test
assert_eq "exit 1: a reject and a tempfail" 1 "$RC"
run -c "$CONF" -j mx-target-nx.mxs.test ok-mx.mxs.test
assert_eq "exit 2: a tempfail, no reject" 2 "$RC"
run -c "$CONF" -j
assert_eq "exit 64: no NAME" 64 "$RC"
run -c "$CONF" -r postmaster -j ok-mx.mxs.test
assert_eq "exit 64: bad role" 64 "$RC"
run -c "$CONF" --no-such-option ok-mx.mxs.test
assert_eq "exit 64: unknown option" 64 "$RC"
run -c "$T_DIR/missing.conf" -j ok-mx.mxs.test
assert_eq "exit 78: missing config file" 78 "$RC"
assert_match "missing config: message names the file" "missing\.conf" "$ERR"
conf "$T_DIR/badkey.conf" 'checks = { sender = true; no_such_key = 1; };'
run -c "$T_DIR/badkey.conf" -j ok-mx.mxs.test
assert_eq "exit 78: unknown key" 78 "$RC"
assert_match "unknown key: message names file and line" "badkey\.conf:[0-9]+" "$ERR"
conf "$T_DIR/reject-dnserr.conf" 'actions = { dns_error = "reject"; };'
run -c "$T_DIR/reject-dnserr.conf" -j ok-mx.mxs.test
assert_eq "exit 78: dns_error may not be reject" 78 "$RC"
printf 'resolver = { servers = [ "127.0.0.1:%s" ] ; timeout_ms = 3000 \n' "$KNOT_PORT" >"$T_DIR/syntax.conf"
run -c "$T_DIR/syntax.conf" -j ok-mx.mxs.test
assert_eq "exit 78: syntax error" 78 "$RC"

# ---- 11. text output ------------------------------------------------------------------------
run -c "$CONF" -r recipient ok-mx.mxs.test
assert_eq "text output: exit 0" 0 "$RC"
assert_match "text output: names the MX host" "mail\.ok-mx\.mxs\.test" "$OUT"
run -c "$CONF" -r recipient null-mx.mxs.test
assert_match "text output: null MX reply" "556 5\.1\.10" "$OUT"

# ---- 12. hostile or unparseable NAMEs: a reason, never a crash --------------------------------
long=$(printf 'a%.0s' $(seq 300))
for bad in 'user@@ok-mx.mxs.test' 'user@' '@' '<unterminated@ok-mx.mxs.test' \
	'"unterminated@ok-mx.mxs.test' 'user@-bad-.mxs.test' 'user@a..b.mxs.test' \
	"user@$long.mxs.test" "$long@$long" $'user@ok-mx.mxs.test\r\nRCPT TO:<x@y>' \
	'user@[999.1.1.1]' 'user@[IPv6:zz::1]' $'\xff\xfe@mxs.test'; do
	run -c "$CONF" -r recipient -j "$bad"
	shown=$(printf '%q' "$bad" | cut -c1-60)
	if ! exited_cleanly; then
		not_ok "hostile NAME $shown" "exit status $RC (signal or hang); stderr: $ERR"
		continue
	fi
	json_fields "$(printf '%s\n' "$OUT" | sed -n 1p)"
	reason=${JF[reason]:-}
	[ "$reason" = null ] && reason=
	if [ -n "$reason" ] || { [ "$RC" -eq 65 ] && [ -n "${JF[error]:-}" ]; }; then
		ok "hostile NAME $shown: exit $RC, ${reason:+reason: $reason}${JF[error]:+error: ${JF[error]}}"
	else
		not_ok "hostile NAME $shown" "exit $RC, no reason; out: $OUT; err: $ERR"
	fi
done

# ---- 13. a NAME that is no domain and no address: an error (65), never "skipped, accept" -------
for bad in 'not a domain!' 'bob@' 'user@a..b.mxs.test' '@'; do
	run -c "$CONF" -j "$bad"
	json_fields "$OUT"
	assert_eq "input error '$bad': exit 65" 65 "$RC"
	assert_match "input error '$bad': JSON with an error field" '^(invalid domain|unparseable address): ' \
		"${JF[error]:-<missing>}"
	run -c "$CONF" "$bad"
	assert_match "input error '$bad': text output says why on stderr" "mxsane-check: .*: (invalid domain|unparseable address): " "$ERR"
done
run -c "$CONF" -j 'bob@' ok-mx.mxs.test
assert_eq "an input error among good names: every NAME answered" 2 "$(printf '%s\n' "$OUT" | grep -c .)"
assert_eq "an input error among good names: exit 65" 65 "$RC"
for fine in '<>' 'user@[192.0.2.1]'; do
	run -c "$CONF" -j "$fine"
	json_fields "$OUT"
	assert_eq "'$fine' is valid input the daemons skip: skipped, exit 0" "skipped 0" "${JF[verdict]:-?} $RC"
done

# text output: the argument is escaped as the log escapes it, so a terminal escape sequence
# in a NAME cannot reach the terminal
# (on standard output for a NAME that is checked, on standard error for one that is refused)
for name in $'\e[31mx@ok-mx.mxs.test' $'x@ok-mx.mxs.test\e]0;title\a'; do
	run -c "$CONF" -r recipient "$name"
	if printf '%s%s' "$OUT" "$ERR" | LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]'; then
		not_ok "text output: no control octet from the NAME" "$(printf '%s%s' "$OUT" "$ERR" | od -c | head -3)"
	else
		ok "text output: no control octet from the NAME"
	fi
	assert_match "text output: ESC shown as \\x1b" '\\x1b[]\[]' "$OUT$ERR"
done

finish

#!/usr/bin/env bash
# 11-check-faults.sh - mxsane-check against tests/tools/faultdns.py:
# every DNS fault gives dns_error (or the right verdict) within resolver.timeout_ms + 10 %
# (+ 300 ms for starting the process), and a temporary failure is never answered with a 5xx.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-check
CHECK="$BUILD_DIR/mxsane-check"
start_faultdns || { not_ok "faultdns.py starts" "see the log above"; finish; }
echo "# faultdns on 127.0.0.1:$FAULT_PORT, log $T_DIR/faultdns.log"

TIMEOUT_MS=1500
LIMIT_MS=$((TIMEOUT_MS + TIMEOUT_MS / 10 + $(slack_ms 300)))
CONF="$T_DIR/mxsane.conf"
printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = %d; };\n' \
	"$FAULT_PORT" "$TIMEOUT_MS" >"$CONF"

# run ARGS...: sets OUT, ERR, RC, MS (wall time, ms).
run() {
	local t0 t1
	t0=$(date +%s%N)
	timeout -k 5 30 "$CHECK" "$@" >"$T_DIR/out" 2>"$T_DIR/err"
	RC=$?
	t1=$(date +%s%N)
	MS=$(((t1 - t0) / 1000000))
	OUT=$(cat "$T_DIR/out")
	ERR=$(cat "$T_DIR/err")
}

# fault NAME ROLE EXPECTED [CONF]
fault() {
	local name=$1 role=$2 want=$3 cf=${4:-$CONF} t="$1 ($2)"
	run -c "$cf" -r "$role" -j "$name"
	if [ "$RC" -ge 124 ]; then
		not_ok "$t: runs" "exit status $RC after $MS ms (signal or hang); stderr: $ERR"
		return
	fi
	json_fields "$(printf '%s\n' "$OUT" | sed -n 1p)"
	if [ -n "${JF[_error]:-}" ]; then
		not_ok "$t: JSON" "${JF[_error]}: $OUT / $ERR"
		return
	fi
	if [ "${JF[verdict]:-}" = "$want" ]; then
		ok "$t: verdict $want"
	else
		not_ok "$t: verdict" "expected $want, got ${JF[verdict]:-<missing>} (${JF[reason]:-no reason})"
	fi
	if [ "$MS" -le "$LIMIT_MS" ]; then
		ok "$t: $MS ms <= $LIMIT_MS ms"
	else
		not_ok "$t: wall time" "$MS ms > $LIMIT_MS ms (timeout_ms $TIMEOUT_MS)"
	fi
	if [ "${JF[verdict]:-}" = dns_error ]; then
		assert_match "$t: temporary failure, no 5xx" '^(null|4[0-9][0-9])$' "${JF[code]:-<missing>}"
		assert_eq "$t: exit status 2 (tempfail)" 2 "$RC"
	fi
}

# ---- faults at the domain itself ------------------------------------------------------------
for f in servfail refused notimp formerr timeout garbage random wrongid short trunc slow5000 \
	cnameloop chain9; do
	fault "$f.fault.test" recipient dns_error
	fault "user@$f.fault.test" sender dns_error
done

# ---- faults that still allow an answer -------------------------------------------------------
fault ok.fault.test recipient ok
fault slow200.fault.test recipient ok
fault chain8.fault.test recipient ok
fault mx100.fault.test recipient ok
assert_match "mx100: MX in the evidence" '^[0-9]+$' "${JF[#mx]:-<missing>}"
grep -q '^faultdns: tcp .* MX mx100\.fault\.test\.' "$T_DIR/faultdns.log" &&
	ok "mx100: truncated UDP answer retried over TCP" ||
	not_ok "mx100: retried over TCP" "no TCP query for mx100 in $T_DIR/faultdns.log"
grep -q '^faultdns: tcp .* MX trunc\.fault\.test\.' "$T_DIR/faultdns.log" &&
	ok "trunc: TC answer retried over TCP" ||
	not_ok "trunc: retried over TCP" "no TCP query for trunc in $T_DIR/faultdns.log"
fault mxgood-and-timeout.fault.test recipient ok
fault nonexistent.fault.test recipient nxdomain
# faultdns sends its SOA unclamped: TTL 600, MINIMUM 300 -> 300 (RFC 2308)
assert_eq "nonexistent: negative TTL min(SOA TTL 600, MINIMUM 300)" 300 "${JF[ttl]:-<missing>}"

# ---- faults at the MX targets: a temporary failure beats a permanent negative ----------------
for f in mxto-timeout mxto-servfail mxto-short mxto-wrongid mxboth; do
	fault "$f.fault.test" recipient dns_error
	fault "$f.fault.test" sender dns_error
done

# ---- answers that prove nothing (RFC 2308 2.2, RFC 2181 5.4.1): never a negative verdict -------
# A referral (NS without SOA), an upward referral to the root, an empty answer without SOA from a
# resolver, an NXDOMAIN from a server neither authoritative nor recursive, a question section
# for another name, answer records for another name: each is a temporary failure.
for f in referral upward nosoa nxnoflags wrongq othername; do
	fault "$f.fault.test" recipient dns_error
	fault "user@$f.fault.test" sender dns_error
	fault "mxto-$f.fault.test" recipient dns_error
done

# ---- every MX host is looked at: only the last of 40 and of 100 is usable --------------------
# The sets do not fit a 512-byte UDP answer: truncated, then asked again over TCP.
for n in 40 100; do
	fault "mxlast$n.fault.test" recipient ok
	assert_eq "mxlast$n: all $n MX hosts in the evidence" "$n" "${JF[#mx]:-<missing>}"
	assert_eq "mxlast$n: the usable one is the last" "good-$(printf %03d $n).fault.test" \
		"$(printf '%s' "${JF[mx.$((n - 1)).host]:-}" | sed 's/\.$//')"
	grep -q "^faultdns: udp .* MX mxlast$n\.fault\.test\." "$T_DIR/faultdns.log" &&
		grep -q "^faultdns: tcp .* MX mxlast$n\.fault\.test\." "$T_DIR/faultdns.log" &&
		ok "mxlast$n: asked over UDP (truncated), then over TCP" ||
		not_ok "mxlast$n: UDP then TCP" "no UDP and TCP query for mxlast$n in $T_DIR/faultdns.log"
done

# More MX records than one set keeps (256): the first 256 hosts do not exist, the usable one
# was never looked at.  Nothing is proved and asking again would not look further: ok, noted.
fault mxlast300.fault.test recipient ok
assert_match "mxlast300: a note says the rest were not looked at" 'more than 256 records' \
	"${JF[notes]:-<missing>}"

# The budget runs out before the usable host is reached (the first 39 never answer): nothing is
# proved against the domain, so dns_error, never broken_mx.
fault mxdead40.fault.test recipient dns_error
fault mxdead40.fault.test sender dns_error

# ---- server port closed ----------------------------------------------------------------------
dead=$(free_port)
printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = %d; };\n' \
	"$dead" "$TIMEOUT_MS" >"$T_DIR/dead.conf"
fault ok.fault.test recipient dns_error "$T_DIR/dead.conf"
fault ok.fault.test sender dns_error "$T_DIR/dead.conf"

kill -0 "$FAULT_PID" 2>/dev/null && ok "faultdns still running" ||
	not_ok "faultdns still running" "$(tail -n 5 "$T_DIR/faultdns.log")"
finish

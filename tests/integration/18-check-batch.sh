#!/usr/bin/env bash
# mxsane-check -f FILE / -f -: one NAME per line, many checked at once (--concurrency N,
# default 64), one line (or one JSON object with -j) per NAME in input order, blank and #
# lines skipped, a line that is no NAME reported as an error in its place; the exit status is
# the worst of all (65 > 1 > 2 > 3 > 0).  DNS comes from the fault-injecting responder, whose
# slow<MS> names answer after MS milliseconds: completion order differs from input order.
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
need_bin mxsane-check
start_faultdns || exit 1
cat >"$T_DIR/mxsane.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$FAULT_PORT" ]; timeout_ms = 2500; };
EOC
chk() { "$BUILD_DIR/mxsane-check" -c "$T_DIR/mxsane.conf" "$@" 2>>"$T_DIR/stderr"; }

printf '%s\n' slow700.a.fault.test ok.fault.test '# a comment' '' 'not a domain!' \
	'  servfail.fault.test  ' slow700.b.fault.test nxdomain.fault.test bob@ok.fault.test \
	slow700.c.fault.test >"$T_DIR/list"
names=(slow700.a.fault.test ok.fault.test 'not a domain!' servfail.fault.test
	slow700.b.fault.test nxdomain.fault.test bob@ok.fault.test slow700.c.fault.test)

# --- text: one line per NAME, in input order
out=$(chk -f "$T_DIR/list")
rc=$?
assert_eq "exit: the worst of all (an input error: 65)" 65 "$rc"
assert_eq "one line per NAME (blank and comment lines skipped)" 8 "$(grep -c . <<<"$out")"
i=0
while IFS= read -r line; do
	n=${names[$i]}
	case $n in *' '*) n="\"$n\"" ;; esac
	assert_eq "line $((i + 1)) is about ${names[$i]}" "$n" "${line%%: *}"
	i=$((i + 1))
done <<<"$out"
assert_match "slow name: ok line" '^slow700\.a\.fault\.test: ok, accept, ttl [0-9]+ s: ' "$(sed -n 1p <<<"$out")"
assert_match "bad line: error in its place" '^"not a domain!": error: invalid domain' "$(sed -n 3p <<<"$out")"
assert_match "servfail: tempfail line" '^servfail\.fault\.test: dns_error, tempfail' "$(sed -n 4p <<<"$out")"
assert_match "nxdomain: reject line" '^nxdomain\.fault\.test: nxdomain, reject' "$(sed -n 6p <<<"$out")"

# --- JSON: one object per NAME, in order; the input error as an object with an error field
out=$(chk -j -f "$T_DIR/list")
assert_eq "-j: exit 65" 65 "$?"
mapfile -t objs <<<"$out"
assert_eq "-j: one object per NAME" 8 "${#objs[@]}"
for i in "${!names[@]}"; do
	assert_eq "-j object $((i + 1)) is about ${names[$i]}" "${names[$i]}" "$(json_get "${objs[$i]}" name)"
done
assert_match "-j: error field" '^invalid domain' "$(json_get "${objs[2]}" error)"
assert_eq "-j: error status" 65 "$(json_get "${objs[2]}" status)"
assert_eq "-j: nxdomain status" 1 "$(json_get "${objs[5]}" status)"

# --- worst status without an input error: reject (1) beats tempfail (2)
printf '%s\n' ok.fault.test servfail.fault.test nxdomain.fault.test >"$T_DIR/l2"
chk -f "$T_DIR/l2" >/dev/null
assert_eq "worst: reject over tempfail" 1 "$?"
printf '%s\n' ok.fault.test servfail.fault.test >"$T_DIR/l3"
chk -f "$T_DIR/l3" >/dev/null
assert_eq "worst: tempfail over ok" 2 "$?"

# --- -f - reads standard input
out=$(printf 'ok.fault.test\nnxdomain.fault.test\n' | chk -f -)
assert_eq "-f -: exit 1" 1 "$?"
assert_eq "-f -: two lines" 2 "$(grep -c . <<<"$out")"

# --- many at once: 6 names answering after 700 ms
: >"$T_DIR/slow"
for i in 1 2 3 4 5 6; do echo "slow700.s$i.fault.test" >>"$T_DIR/slow"; done
t0=$(now_ms)
out=$(chk -f "$T_DIR/slow")
t1=$(now_ms)
assert_eq "6 slow names, default concurrency: all ok" 6 "$(grep -c ': ok, accept' <<<"$out")"
el=$((t1 - t0))
if [ "$el" -lt $((1400 + $(slack_ms 600))) ]; then
	ok "6 slow names at once took $el ms"
else
	not_ok "6 slow names at once" "took $el ms (one after another: 4200+)"
fi
t0=$(now_ms)
chk --concurrency 2 -f "$T_DIR/slow" >/dev/null
t1=$(now_ms)
el=$((t1 - t0))
if [ "$el" -ge 2000 ]; then
	ok "--concurrency 2: 6 slow names took $el ms (3 rounds)"
else
	not_ok "--concurrency 2 limits the lookups in flight" "took only $el ms"
fi

# --- hostile input: a NUL octet, an over-long line, a missing file, bad options
printf 'ok.fault.test\nbad\0name.fault.test\n%s\nok.fault.test\n' "$(head -c 3000 /dev/zero | tr '\0' a)" >"$T_DIR/hostile"
out=$(chk -f "$T_DIR/hostile")
rc=$?
assert_eq "hostile lines: exit 65, no crash" 65 "$rc"
assert_eq "hostile lines: four lines out" 4 "$(grep -c . <<<"$out")"
assert_match "NUL octet reported" 'error: the line holds a NUL octet' "$(sed -n 2p <<<"$out")"
assert_match "over-long line reported" 'error: longer than 1024 octets' "$(sed -n 3p <<<"$out")"
chk -f "$T_DIR/does-not-exist" >/dev/null
assert_eq "-f missing file: exit 66" 66 "$?"
chk -f "$T_DIR/l2" ok.fault.test >/dev/null
assert_eq "-f and NAMEs: usage error" 64 "$?"
chk --concurrency 0 -f "$T_DIR/l2" >/dev/null
assert_eq "--concurrency 0: usage error" 64 "$?"
"$BUILD_DIR/mxsane-check" --help | grep -q -- '--concurrency N'
assert_eq "--help documents --concurrency" 0 "$?"
finish

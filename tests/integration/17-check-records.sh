#!/usr/bin/env bash
# mxsane-check: what the records say.  Each MX record's TTL and each address's TTL are shown
# (the engine keeps the records' own TTLs for mxsane-check), with the lowest of them and how
# long a daemon would cache the verdict (within cache.min_ttl/max_ttl); hosts at one
# preference are marked as sharing the load; advisory notes (TTL below 300 s or above a day,
# a host named as a backup preferred over another) never change the verdict or exit status.
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
need_bin mxsane-check

mkdir -p "$T_DIR/zones"
cat >"$T_DIR/zones/rec.test.zone" <<'EOZ'
$ORIGIN rec.test.
@          600 IN SOA ns.rec.test. hostmaster.rec.test. 1 3600 900 604800 300
@         3600 IN NS  ns.rec.test.
ns        3600 IN A   127.0.0.1
shortttl    60 IN MX  10 longaddr.rec.test.
longaddr 172800 IN A  192.0.2.10
load      3600 IN MX  10 a.rec.test.
load      3600 IN MX  10 b.rec.test.
load      3600 IN MX  20 c.rec.test.
a         3600 IN A   192.0.2.1
a         1800 IN AAAA 2001:db8::1
b         3600 IN A   192.0.2.2
c         3600 IN A   192.0.2.3
backwards 3600 IN MX  5 backup.rec.test.
backwards 3600 IN MX  10 mail.rec.test.
backup    3600 IN A   192.0.2.4
mail      3600 IN A   192.0.2.5
fine      3600 IN MX  10 mail.rec.test.
fine      3600 IN MX  20 backup.rec.test.
EOZ
KNOT_ZONES_DIR="$T_DIR/zones" start_knot || exit 1
cat >"$T_DIR/mxsane.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
bogus_networks = [ ];
cache = { max_ttl = 200; };
EOC
chk() { "$BUILD_DIR/mxsane-check" -c "$T_DIR/mxsane.conf" "$@" 2>/dev/null; }

# --- each record's own TTL, even beyond the daemons' cache.max_ttl
out=$(chk -j shortttl.rec.test)
rc=$?
json_fields "$out"
assert_eq "short MX TTL: exit 0 (notes never change it)" 0 "$rc"
assert_eq "short MX TTL: verdict ok" ok "${JF[verdict]}"
assert_eq "MX record TTL" 60 "${JF[mx.0.ttl]}"
assert_eq "address TTL above the cache bound, as published" "[172800]" "${JF[mx.0.address_ttls]}"
assert_eq "verdict TTL: the lowest" 60 "${JF[ttl]}"
assert_match "note: MX TTL below 300 s" "the MX set's TTL 60 s is below 300 s" "${JF[advice]}"
assert_match "note: address TTL above a day" \
	'the addresses of longaddr\.rec\.test\. TTL 172800 s is above one day' "${JF[advice]}"
txt=$(chk shortttl.rec.test)
assert_match "text: MX count line with its TTL" '\[ok\] 1 MX record, TTL 60 s' "$txt"
assert_match "text: address with its TTL" '192\.0\.2\.10 +TTL 172800 s' "$txt"
assert_match "text: note lines" 'note: the MX set.s TTL 60 s is below 300 s' "$txt"
assert_match "text: cache line" 'cache: +miss, ttl 60 s \(a daemon caches this verdict 60 s\)' "$txt"

# --- the daemons' cache bound applies to "cached for", not to the TTLs shown
out=$(chk -j load.rec.test)
json_fields "$out"
# the lowest TTL includes the negative answers (no AAAA for b and c: the SOA's 300 s)
assert_eq "load: verdict TTL" 300 "${JF[ttl]}"
assert_eq "load: a daemon caches it at most max_ttl" 200 "${JF[cached_for]}"
assert_eq "per-address TTLs (A and AAAA sets)" "[3600, 1800]" "${JF[mx.0.address_ttls]}"
assert_eq "equal preference: a shares the load" 2 "${JF[mx.0.shares_load]}"
assert_eq "equal preference: b shares the load" 2 "${JF[mx.1.shares_load]}"
assert_eq "c is alone at its preference" 0 "${JF[mx.2.shares_load]}"
assert_eq "no notes for ordinary TTLs" 0 "${JF[#advice]}"
txt=$(chk load.rec.test)
assert_match "text: shared load marked" 'MX 10 a\.rec\.test\.  \(shares the load with 1 other host at preference 10\)' "$txt"
if grep -q 'MX 20 c.rec.test..*shares' <<<"$txt"; then
	not_ok "text: a lone host is not marked" "$txt"
else
	ok "text: a lone host is not marked"
fi

# --- priorities backwards: the backup is preferred
out=$(chk -j backwards.rec.test)
rc=$?
assert_eq "backwards: exit 0" 0 "$rc"
assert_eq "backwards: verdict unchanged" ok "$(json_get "$out" verdict)"
assert_match "backwards: note" \
	'priorities look backwards: backup\.rec\.test\. \(preference 5\) is named as a backup but is preferred over mail\.rec\.test\. \(preference 10\)' \
	"$(json_get "$out" advice)"
out=$(chk -j fine.rec.test)
assert_eq "backup less preferred: no note" 0 "$(json_get "$out" '#advice')"
finish

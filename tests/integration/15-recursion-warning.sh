#!/usr/bin/env bash
# 15-recursion-warning.sh - mxsane needs a recursive resolver: a server that does not recurse
# answers only its own zones and refers every other question elsewhere, and a referral proves
# nothing (RFC 2308 2.2), so mail would be tempfailed.  Each program asks every configured
# server once whether it recurses (". NS" with RD set; the RA bit of the reply says) and warns,
# naming the server: mxsane-check on stderr, the daemons in their log at start and again at
# each reload.  knotd (authoritative only) must be named; faultdns.py, which answers that
# query as a recursive resolver does, must not be.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-check mxsane-policyd mxsane-milter
start_knot || { not_ok "knotd starts" "see the log above"; finish; }
start_faultdns || { not_ok "faultdns.py starts" "see the log above"; finish; }
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)

printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = 1500; };\n' "$KNOT_PORT" >"$T_DIR/knot.conf"
printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = 1500; };\n' "$FAULT_PORT" >"$T_DIR/fault.conf"
printf 'resolver = { servers = [ "127.0.0.1:%s", "127.0.0.1:%s" ]; timeout_ms = 1500; };\n' \
	"$FAULT_PORT" "$KNOT_PORT" >"$T_DIR/both.conf"
WARN="WARNING: resolver server 127.0.0.1:$KNOT_PORT does not offer recursion"

# ---- mxsane-check --------------------------------------------------------------------------
timeout 30 "$BUILD_DIR/mxsane-check" -c "$T_DIR/knot.conf" -j ok-mx.mxs.test >"$T_DIR/out" 2>"$T_DIR/err"
assert_eq "mxsane-check via knotd: the zone it serves still checks (ok)" ok \
	"$(json_get "$(cat "$T_DIR/out")" verdict)"
assert_match "mxsane-check via knotd: the warning names the server" "$WARN" "$(cat "$T_DIR/err")"
timeout 30 "$BUILD_DIR/mxsane-check" -c "$T_DIR/fault.conf" -j ok.fault.test >"$T_DIR/out" 2>"$T_DIR/err"
assert_eq "mxsane-check via a recursive server: no warning" "" "$(cat "$T_DIR/err")"
timeout 30 "$BUILD_DIR/mxsane-check" -c "$T_DIR/both.conf" -j ok.fault.test >"$T_DIR/out" 2>"$T_DIR/err"
assert_eq "two servers: one warning, for the one that does not recurse" 1 "$(grep -c WARNING "$T_DIR/err")"
assert_match "two servers: it names knotd" "$WARN" "$(cat "$T_DIR/err")"
dead=$(free_port)
timeout 30 "$BUILD_DIR/mxsane-check" -s "127.0.0.1:$dead" -j ok.fault.test >"$T_DIR/out" 2>"$T_DIR/err"
assert_match "a server that does not answer: named" \
	"WARNING: resolver server 127.0.0.1:$dead did not answer" "$(cat "$T_DIR/err")"

# ---- the daemons: at start and at each reload ------------------------------------------------
count_warn() { grep -c "does not offer recursion" "$1" 2>/dev/null || true; }
wait_count() { # FILE N: wait (max 5 s) until FILE holds N warnings
	local i
	for i in $(seq 50); do
		[ "$(count_warn "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

start_on_free_port policyd "$BUILD_DIR/mxsane-policyd" -f -c "$T_DIR/knot.conf" \
	-l "inet:127.0.0.1:{PORT}" "${USER_ARGS[@]}" || { not_ok "mxsane-policyd starts" "see above"; finish; }
PD=$BG_PID
wait_count "$T_DIR/policyd.log" 1 && ok "mxsane-policyd: warning at start" ||
	not_ok "mxsane-policyd: warning at start" "$(cat "$T_DIR/policyd.log")"
assert_match "mxsane-policyd: it names the server" "$WARN" "$(cat "$T_DIR/policyd.log")"
kill -HUP "$PD"
wait_count "$T_DIR/policyd.log" 2 && ok "mxsane-policyd: warning again after a reload (SIGHUP)" ||
	not_ok "mxsane-policyd: warning after reload" "$(cat "$T_DIR/policyd.log")"

start_on_free_port milter "$BUILD_DIR/mxsane-milter" -f "${USER_ARGS[@]}" -c "$T_DIR/knot.conf" \
	-p "inet:{PORT}@127.0.0.1" || { not_ok "mxsane-milter starts" "see above"; finish; }
MP=$BG_PID
wait_count "$T_DIR/milter.log" 1 && ok "mxsane-milter: warning at start" ||
	not_ok "mxsane-milter: warning at start" "$(cat "$T_DIR/milter.log")"
assert_match "mxsane-milter: it names the server" "$WARN" "$(cat "$T_DIR/milter.log")"
kill -USR1 "$MP"
wait_count "$T_DIR/milter.log" 2 && ok "mxsane-milter: warning again after a reload (SIGUSR1)" ||
	not_ok "mxsane-milter: warning after reload" "$(cat "$T_DIR/milter.log")"

start_on_free_port policyd-r "$BUILD_DIR/mxsane-policyd" -f -c "$T_DIR/fault.conf" \
	-l "inet:127.0.0.1:{PORT}" "${USER_ARGS[@]}" || { not_ok "mxsane-policyd (faultdns) starts" "see above"; finish; }
sleep 1
assert_eq "mxsane-policyd via a recursive server: no warning" 0 "$(grep -c WARNING "$T_DIR/policyd-r.log" || true)"
finish

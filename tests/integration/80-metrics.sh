#!/usr/bin/env bash
# 80-metrics.sh - GET /metrics of mxsane-policyd and mxsane-milter (metrics.listen), after
# known traffic against knotd serving tests/zones: `promtool check metrics` accepts both
# outputs, and the counters say what was done (decisions by verdict, action and role, the
# `would` label of monitor mode, cache, DNS queries, policy connections, milter sessions,
# reloads ok and failed, build info).  Also: metrics.listen validated with FILE:LINE, the
# start lines name the address, a unix socket endpoint, and the HTTP answers to what is not
# a scrape (404, 405, 400 for garbage, 431 for an endless header, HEAD without a body), and
# -m in place of metrics.listen.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/metrics.sh"

need_bin mxsane-policyd mxsane-milter
need_cmd promtool
POLICYD="$BUILD_DIR/mxsane-policyd"
MILTER="$BUILD_DIR/mxsane-milter"
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)

start_knot || { not_ok "knotd starts" "see the log above"; finish; }

# ---- configuration: metrics.listen is validated like the other sockets
printf 'resolver = { timeout_ms = 1000; };\nmetrics = { listen = "localhost:9325"; };\n' \
	>"$T_DIR/bad.conf"
out=$("$POLICYD" -n -c "$T_DIR/bad.conf" 2>&1)
rc=$?
assert_eq "a host name in metrics.listen is a configuration error" 78 "$rc"
assert_match "the error names FILE:LINE and the forms expected" \
	"bad\.conf:2: .*metrics\.listen.*invalid socket \"localhost:9325\".*inet:IP:PORT" "$out"
printf 'metrics = { listen = "127.0.0.1:9325"; };\n' >"$T_DIR/bad2.conf"
"$MILTER" -n -c "$T_DIR/bad2.conf" >/dev/null 2>&1
assert_eq "metrics.listen needs inet: or unix: (milter -n)" 78 "$?"
printf 'metrics = { listen = "inet:[::1]:9325"; };\n' >"$T_DIR/good.conf"
"$POLICYD" -n -c "$T_DIR/good.conf" >/dev/null 2>&1
assert_eq "inet:[IPv6]:PORT is accepted" 0 "$?"

# ---- mxsane-policyd, enforce mode
MPORT=$(free_port) || { not_ok "free port"; finish; }
conf() { # FILE MODE METRICS-ADDR
	cat >"$1" <<EOC
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
mode = "$2";
metrics = { listen = "$3"; };
EOC
}
conf "$T_DIR/p.conf" enforce "inet:127.0.0.1:$MPORT"
start_on_free_port policyd "$POLICYD" -f "${USER_ARGS[@]}" -c "$T_DIR/p.conf" \
	-l "inet:127.0.0.1:{PORT}" || { not_ok "mxsane-policyd starts"; finish; }
PADDR="inet:127.0.0.1:$BG_PORT" PPID_=$BG_PID
wait_port "$MPORT" || not_ok "metrics endpoint listens"
assert_match "the start line names the metrics address" \
	"listening on $PADDR \(configuration .*p\.conf, mode enforce, metrics inet:127\.0\.0\.1:$MPORT," \
	"$(cat "$T_DIR/policyd.log")"

req() { # SENDER RECIPIENT
	printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=%s\nrecipient=%s\n\n' "$1" "$2"
}
R_NULL=$(policy_ask "$PADDR" 3 "$(req a@ok-mx.mxs.test b@null-mx.mxs.test)")
R_OK=$(policy_ask "$PADDR" 2 "$(req a@ok-mx.mxs.test b@ok-mx.mxs.test)")
assert_eq "traffic: three null-MX recipients rejected" 3 "$(grep -c '^action=556' <<<"$R_NULL")"
assert_eq "traffic: two ok recipients" 2 "$(grep -c '^action=DUNNO' <<<"$R_OK")"

M="$T_DIR/policyd.metrics"
scrape "inet:127.0.0.1:$MPORT" "$M" && ok "GET /metrics answers 200" ||
	not_ok "GET /metrics answers 200" "$(head -c 300 "$M")"
if out=$(promtool check metrics <"$M" 2>&1); then
	ok "promtool check metrics accepts mxsane-policyd's output"
else
	not_ok "promtool check metrics accepts mxsane-policyd's output" "$out"
fi
assert_eq "decisions: null_mx rejected as recipient" 3 \
	"$(metric "$M" mxsane_decisions_total 'verdict="null_mx",action="reject",role="recipient"')"
assert_eq "decisions: ok accepted as recipient" 2 \
	"$(metric "$M" mxsane_decisions_total 'verdict="ok",action="accept",role="recipient"')"
assert_eq "decisions: the sender, checked with each request" 5 \
	"$(metric "$M" mxsane_decisions_total 'verdict="ok",action="accept",role="sender"')"
assert_eq "decision duration histogram counts every decision" 10 \
	"$(metric "$M" mxsane_decision_duration_seconds_count '')"
hits=$(metric "$M" mxsane_cache_hits_total '')
misses=$(metric "$M" mxsane_cache_misses_total '')
[ "${hits:-0}" -gt 0 ] && [ "${misses:-0}" -gt 0 ] && ok "cache hits ($hits) and misses ($misses)" ||
	not_ok "cache hits and misses counted" "hits=$hits misses=$misses"
mxq=$(metric "$M" mxsane_dns_queries_total 'type="MX",outcome="noerror"')
[ "${mxq:-0}" -ge 2 ] && ok "DNS: MX queries answered noerror ($mxq)" ||
	not_ok "DNS: MX queries answered noerror" "$mxq"
rtt=$(metric "$M" mxsane_dns_round_trip_seconds_count '')
[ "${rtt:-0}" -ge "$mxq" ] && ok "DNS round-trip histogram ($rtt queries)" ||
	not_ok "DNS round-trip histogram" "$rtt < $mxq"
# two of policy_ask, and the probe by which start_on_free_port saw the port listening
assert_eq "policy connections accepted" 3 \
	"$(metric "$M" mxsane_policy_connections_total 'result="accepted"')"
assert_eq "policy requests answered" 5 "$(metric "$M" mxsane_policy_requests_total '')"
assert_eq "outage guard: no outage" 0 "$(metric "$M" mxsane_dns_outage '')"
assert_match "build info with the version" "^mxsane_build_info\{version=\"[0-9.]+\",program=\"mxsane-policyd\"\} 1$" \
	"$(grep '^mxsane_build_info' "$M")"
loaded=$(metric "$M" mxsane_config_last_load_success_timestamp_seconds '')
now=$(date +%s)
[ "${loaded:-0}" -gt $((now - 300)) ] && [ "$loaded" -le "$now" ] &&
	ok "time of the last successful load" || not_ok "time of the last successful load" "$loaded"

# ---- HTTP: what is not a scrape
A="inet:127.0.0.1:$MPORT"
assert_match "unknown path: 404" '^HTTP/1\.1 404 ' "$(http_raw "$A" $'GET /other HTTP/1.1\r\n\r\n')"
assert_match "POST: 405" '^HTTP/1\.1 405 ' "$(http_raw "$A" $'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n')"
assert_match "garbage: 400" '^HTTP/1\.1 400 ' "$(http_raw "$A" $'\x01\x02 hello there\r\n\r\n')"
long=$(printf 'X-Pad: %04100d\r\n' 0)
assert_match "a request head over 4096 octets: 431" '^HTTP/1\.1 431 ' \
	"$(http_raw "$A" "GET /metrics HTTP/1.1"$'\r\n'"$long"$'\r\n')"
head_resp=$(http_raw "$A" $'HEAD /metrics HTTP/1.0\r\n\r\n')
# ($(...) drops the last newline of the empty line that ends the head)
assert_match "HEAD: 200, the length of the body, no body" \
	$'^HTTP/1\\.1 200 OK\r\nContent-Type: text/plain; version=0\\.0\\.4; charset=utf-8\r\nContent-Length: [1-9][0-9]*\r\nConnection: close\r\n\r$' \
	"$head_resp"
scrape "$A" "$M"
assert_eq "the endpoint's own counters: errors answered (404, 405, 400, 431)" 4 \
	"$(metric "$M" mxsane_metrics_http_requests_total 'result="error"')"

# ---- reloads: one that takes effect, one refused
kill -HUP "$PPID_"
sleep 0.5
assert_match "policyd: a reload that keeps metrics.listen says nothing of it" '^$' \
	"$(grep 'metrics.listen changed' "$T_DIR/policyd.log")"
conf "$T_DIR/p.conf" enforce "inet:127.0.0.1:9"
kill -HUP "$PPID_"
sleep 0.5
assert_match "policyd: a changed metrics.listen is said to need a restart" \
	"reload: metrics\.listen changed to inet:127\.0\.0\.1:9; metrics stay on inet:127\.0\.0\.1:$MPORT until" \
	"$(cat "$T_DIR/policyd.log")"
echo 'mode = "sideways";' >>"$T_DIR/p.conf"
kill -HUP "$PPID_"
sleep 0.5
scrape "$A" "$M"
assert_eq "reloads ok" 2 "$(metric "$M" mxsane_config_reloads_total 'result="ok"')"
assert_eq "reloads failed" 1 "$(metric "$M" mxsane_config_reloads_total 'result="failed"')"
stop_pid "$PPID_"

# ---- monitor mode: what was done, and what would have been; -m overrides metrics.listen
"$POLICYD" -m "localhost:9326" -n -c "$T_DIR/good.conf" >/dev/null 2>&1
assert_eq "-m with a host name is a usage error" 64 "$?"
MPORT2=$(free_port) || { not_ok "free port"; finish; }
conf "$T_DIR/mon.conf" monitor "unix:$T_DIR/not-this.sock"
start_on_free_port policyd-mon "$POLICYD" -f "${USER_ARGS[@]}" -c "$T_DIR/mon.conf" \
	-l "inet:127.0.0.1:{PORT}" -m "inet:127.0.0.1:$MPORT2" ||
	{ not_ok "mxsane-policyd (monitor) starts"; finish; }
wait_port "$MPORT2" && [ ! -e "$T_DIR/not-this.sock" ] &&
	ok "-m serves the metrics where it says, instead of metrics.listen" ||
	not_ok "-m serves the metrics where it says, instead of metrics.listen"
R=$(policy_ask "inet:127.0.0.1:$BG_PORT" 2 "$(req a@ok-mx.mxs.test b@null-mx.mxs.test)")
assert_eq "monitor mode: null MX recipient only warned" 2 "$(grep -c '^action=PREPEND' <<<"$R")"
scrape "inet:127.0.0.1:$MPORT2" "$M"
assert_eq "monitor mode: action=warn, would=reject" 2 \
	"$(metric "$M" mxsane_decisions_total 'verdict="null_mx",action="warn",role="recipient",would="reject"')"
assert_eq "monitor mode: an ok verdict has no would label" 2 \
	"$(metric "$M" mxsane_decisions_total 'verdict="ok",action="accept",role="sender"')"
promtool check metrics <"$M" >/dev/null 2>&1 && ok "promtool accepts the monitor-mode output" ||
	not_ok "promtool accepts the monitor-mode output" "$(promtool check metrics <"$M" 2>&1)"
stop_pid "$BG_PID"

# ---- mxsane-milter, metrics on a unix socket
need_cmd miltertest
MSOCK="$T_DIR/metrics.sock"
conf "$T_DIR/m.conf" enforce "unix:$MSOCK"
start_on_free_port milter "$MILTER" -f "${USER_ARGS[@]}" -c "$T_DIR/m.conf" \
	-p "inet:{PORT}@127.0.0.1" || { not_ok "mxsane-milter starts"; finish; }
MILPORT=$BG_PORT MILPID=$BG_PID
wait_file "$MSOCK" || not_ok "the milter's metrics socket appears"
assert_match "the milter's start line names the metrics address" \
	"mode enforce, configuration .*m\.conf, metrics unix:$MSOCK," "$(cat "$T_DIR/milter.log")"
assert_eq "the metrics socket is mode 0660" 660 "$(stat -c %a "$MSOCK")"
for i in 1 2; do
	timeout -k 5 60 miltertest -s "$MXS_TOP/tests/milter/session.lua" \
		-D "sock=inet:$MILPORT@127.0.0.1" -D "from=<s@ok-mx.mxs.test>" \
		-D "rcpts=<r@null-mx.mxs.test> <r@ok-mx.mxs.test>" >"$T_DIR/mt.$i" 2>&1
done
assert_match "miltertest: the null-MX recipient is refused" 'rcpt <r@null-mx\.mxs\.test> replycode' \
	"$(cat "$T_DIR/mt.2")"
MM="$T_DIR/milter.metrics"
scrape "unix:$MSOCK" "$MM" && ok "the milter answers GET /metrics on its unix socket" ||
	not_ok "the milter answers GET /metrics on its unix socket" "$(head -c 300 "$MM")"
if out=$(promtool check metrics <"$MM" 2>&1); then
	ok "promtool check metrics accepts mxsane-milter's output"
else
	not_ok "promtool check metrics accepts mxsane-milter's output" "$out"
fi
assert_eq "milter decisions: null_mx rejected as recipient" 2 \
	"$(metric "$MM" mxsane_decisions_total 'verdict="null_mx",action="reject",role="recipient"')"
assert_eq "milter decisions: ok sender" 2 \
	"$(metric "$MM" mxsane_decisions_total 'verdict="ok",action="accept",role="sender"')"
assert_eq "milter sessions served" 2 "$(metric "$MM" mxsane_milter_sessions_total '')"
assert_eq "milter sessions open" 0 "$(metric "$MM" mxsane_milter_sessions '')"
assert_match "milter build info" 'program="mxsane-milter"' "$(grep '^mxsane_build_info' "$MM")"
conf "$T_DIR/m.conf" enforce "inet:127.0.0.1:9"
kill -USR1 "$MILPID"
sleep 0.5
scrape "unix:$MSOCK" "$MM"
assert_eq "milter: a reload counted" 1 "$(metric "$MM" mxsane_config_reloads_total 'result="ok"')"
assert_match "milter: a changed metrics.listen is said to need a restart" \
	"reload: metrics\.listen changed to inet:127\.0\.0\.1:9: metrics stay on unix:$MSOCK until restarted" \
	"$(cat "$T_DIR/milter.log")"
stop_pid "$MILPID"
[ ! -e "$MSOCK" ] && ok "the metrics socket is removed at stop" ||
	not_ok "the metrics socket is removed at stop"

finish

#!/usr/bin/env bash
# 81-metrics-prometheus.sh - a real Prometheus server (Debian's `prometheus`, its own
# configuration and data directory in T_DIR, on loopback) scrapes mxsane-policyd every
# second; after known traffic against knotd, its HTTP query API returns the expected
# mxsane_decisions_total values, and the scrape target is healthy.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/metrics.sh"

need_bin mxsane-policyd
need_cmd prometheus
POLICYD="$BUILD_DIR/mxsane-policyd"
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)

start_knot || { not_ok "knotd starts" "see the log above"; finish; }

MPORT=$(free_port) || { not_ok "free port"; finish; }
cat >"$T_DIR/p.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
metrics = { listen = "inet:127.0.0.1:$MPORT"; };
EOC
start_on_free_port policyd "$POLICYD" -f "${USER_ARGS[@]}" -c "$T_DIR/p.conf" \
	-l "inet:127.0.0.1:{PORT}" || { not_ok "mxsane-policyd starts"; finish; }
PADDR="inet:127.0.0.1:$BG_PORT"
wait_port "$MPORT" || not_ok "metrics endpoint listens"

mkdir -p "$T_DIR/prom-data"
cat >"$T_DIR/prometheus.yml" <<EOC
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: mxsane-policyd
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOC
start_on_free_port prometheus prometheus --config.file="$T_DIR/prometheus.yml" \
	--storage.tsdb.path="$T_DIR/prom-data" --web.listen-address="127.0.0.1:{PORT}" \
	--storage.tsdb.retention.time=1h || { not_ok "prometheus starts"; finish; }
PROM="127.0.0.1:$BG_PORT"

# query EXPR: the value of the first series of an instant query, "" when none
query() {
	"$PY" - "$PROM" "$1" <<'PYEOF'
import json, sys, urllib.parse, urllib.request
prom, expr = sys.argv[1], sys.argv[2]
url = "http://%s/api/v1/query?%s" % (prom, urllib.parse.urlencode({"query": expr}))
try:
    d = json.load(urllib.request.urlopen(url, timeout=5))
except Exception:
    sys.exit(0)
r = d.get("data", {}).get("result", [])
if r:
    print(r[0]["value"][1])
PYEOF
}

# wait_query EXPR WANT: poll (20 s at most) until the query returns WANT; sets GOT
wait_query() {
	local i
	for i in $(seq 40); do
		GOT=$(query "$1")
		[ "$GOT" = "$2" ] && return 0
		sleep 0.5
	done
	return 1
}

req() {
	printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=%s\nrecipient=%s\n' "$1" "$2"
}
R1=$(policy_ask "$PADDR" 4 "$(req a@ok-mx.mxs.test b@null-mx.mxs.test)")
R2=$(policy_ask "$PADDR" 3 "$(req a@null-mx.mxs.test b@ok-mx.mxs.test)")
R3=$(policy_ask "$PADDR" 2 "$(req a@ok-mx.mxs.test b@nxdomain.mxs.test)")
assert_eq "traffic: 4 null-MX recipients, 3 null-MX senders, 2 nonexistent recipients refused" \
	"4 3 2" "$(grep -c '^action=556' <<<"$R1") $(grep -c '^action=550' <<<"$R2") $(grep -c '^action=550' <<<"$R3")"

wait_query 'up{job="mxsane-policyd"}' 1 && ok "Prometheus scrapes mxsane-policyd (up = 1)" ||
	not_ok "Prometheus scrapes mxsane-policyd (up = 1)" "got '$GOT'; $(tail -5 "$T_DIR/prometheus.log")"
e='mxsane_decisions_total{verdict="null_mx",action="reject",role="recipient"}'
wait_query "$e" 4 && ok "query API: $e = 4" || not_ok "query API: $e" "got '$GOT'"
e='mxsane_decisions_total{verdict="null_mx",action="reject",role="sender"}'
wait_query "$e" 3 && ok "query API: $e = 3" || not_ok "query API: $e" "got '$GOT'"
e='mxsane_decisions_total{verdict="nxdomain",action="reject",role="recipient"}'
wait_query "$e" 2 && ok "query API: $e = 2" || not_ok "query API: $e" "got '$GOT'"
# the ok senders of R1 and R3; R2's recipients are not checked after a rejected sender
e='sum(mxsane_decisions_total{verdict="ok",role="sender"})'
wait_query "$e" 6 && ok "query API: $e = 6" || not_ok "query API: $e" "got '$GOT'"
e='sum(mxsane_decisions_total)'
wait_query "$e" 15 && ok "query API: every decision counted once ($e = 15)" ||
	not_ok "query API: $e" "got '$GOT'"
e='mxsane_decision_duration_seconds_count'
wait_query "$e" 15 && ok "query API: the duration histogram's count" || not_ok "query API: $e" "got '$GOT'"

# more traffic: the next scrapes see it
policy_ask "$PADDR" 5 "$(req a@ok-mx.mxs.test b@null-mx.mxs.test)" >/dev/null
e='mxsane_decisions_total{verdict="null_mx",action="reject",role="recipient"}'
wait_query "$e" 9 && ok "query API: later traffic reaches Prometheus ($e = 9)" ||
	not_ok "query API: later traffic" "got '$GOT'"
wait_query 'increase(mxsane_metrics_http_requests_total{result="error"}[1m])' 0 &&
	ok "no scrape failed" || not_ok "no scrape failed" "got '$GOT'"

finish

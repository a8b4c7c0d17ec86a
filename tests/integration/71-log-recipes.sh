#!/usr/bin/env bash
# 71-log-recipes.sh - the README's log recipes, as written there, on a /var/log/mail.log
# written by a real rsyslog (Debian's rsyslogd with Debian 12's defaults: RFC 3339 time,
# mail.* to mail.log), started here with a configuration, socket, work directory and log of
# its own in $T_DIR.  mxsane-policyd logs to syslog in a private mount namespace whose /dev
# is this test's directory, where /dev/log is that rsyslog's socket: the host's syslog and
# /dev are never touched.  Traffic: enforce mode (key=value), monitor mode, JSON records, a
# hostile HELO that poses as decision fields.  Each recipe must give the right answer, and
# every recipe in the README must be one this test knows.  mxsane-report must agree.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_cmd rsyslogd unshare mount logger jq
need_bin mxsane-policyd
need_bin mxsane-report
[ "$(id -u)" = 0 ] || skip "needs root (mount namespace)"
unshare -m true 2>/dev/null || skip "unshare -m not permitted here"
POLICYD="$BUILD_DIR/mxsane-policyd"
start_knot || { not_ok "knotd starts" "see the log above"; finish; }

# ---- rsyslog of our own
DEV="$T_DIR/dev"
LOG="$T_DIR/mail.log"
mkdir -p "$DEV" "$T_DIR/rsyslog-work"
cat >"$T_DIR/rsyslog.conf" <<EOF
# Debian 12's /etc/rsyslog.conf, with its socket, work directory and mail log moved here
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$DEV/log")
\$FileOwner root
\$FileGroup adm
\$FileCreateMode 0640
\$Umask 0022
\$WorkDirectory $T_DIR/rsyslog-work
mail.*				-$LOG
EOF
start_bg rsyslogd rsyslogd -n -f "$T_DIR/rsyslog.conf" -i "$T_DIR/rsyslog.pid"
wait_file "$DEV/log" || { cat "$T_DIR/rsyslogd.log" >&2; not_ok "rsyslogd starts" "no socket"; finish; }
ok "rsyslogd listens on $DEV/log"

# in_ns CMD...: CMD in a mount namespace whose /dev is $DEV (with the usual device nodes)
in_ns() {
	unshare -m sh -c 'set -e; D=$1; shift
		for n in null zero random urandom full; do touch "$D/$n"; mount --bind "/dev/$n" "$D/$n"; done
		mount --rbind "$D" /dev
		exec "$@"' sh "$DEV" "$@"
}
# sync_log TAG: wait until rsyslog has written everything sent so far
N_SYNC=0
sync_log() {
	N_SYNC=$((N_SYNC + 1))
	logger -u "$DEV/log" -p mail.info -t mxs-sync "sync $N_SYNC"
	local i
	for i in $(seq 100); do
		grep -q "mxs-sync: sync $N_SYNC\$" "$LOG" 2>/dev/null && return 0
		sleep 0.1
	done
	not_ok "rsyslog wrote sync $N_SYNC" "not in $LOG"
	return 1
}

req() { # instance client sender recipient [queue_id [helo]]
	printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n'
	printf 'client_address=%s\nclient_name=unknown\nhelo_name=%s\n' "$2" "${6:-h.example}"
	printf 'sender=%s\nrecipient=%s\ninstance=%s\n' "$3" "$4" "$1"
	[ -n "${5:-}" ] && printf 'queue_id=%s\n' "$5"
	printf '\n'
}
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)
policy() { # conf: requests on stdin, decisions to syslog
	in_ns "$POLICYD" -s -c "$1" "${USER_ARGS[@]}" >"$T_DIR/replies" 2>>"$T_DIR/policyd.err"
}
conf() { # name extra...
	local f="$T_DIR/$1.conf"
	shift
	printf 'resolver = { servers = [ "127.0.0.1:%s" ]; timeout_ms = 3000; };\n' "$KNOT_PORT" >"$f"
	printf '%s\n' "$@" >>"$f"
	echo "$f"
}
EVIL='x verdict=null_mx action=reject role=sender domain=victim.example client_addr=6.6.6.6 y'

# enforce, key=value
{
	req A1 192.0.2.10 a@null-mx.mxs.test r1@ok-mx.mxs.test
	req A1 192.0.2.10 a@null-mx.mxs.test r2@ok-mx.mxs.test
	req A2 192.0.2.10 b@nonexistent.mxs.test r1@ok-mx.mxs.test
	req A3 192.0.2.11 c@ok-mx.mxs.test z@ok-mx.mxs.test
	req A3 192.0.2.11 c@ok-mx.mxs.test x@null-mx.mxs.test 91A8DA72FCB
	req A3 192.0.2.11 c@ok-mx.mxs.test y@mx-target-nx.mxs.test 91A8DA72FCB
	req A4 192.0.2.12 d@null-mx.mxs.test r1@ok-mx.mxs.test
	req A5 192.0.2.12 e@nowhere.relay.test r1@ok-mx.mxs.test
	req A6 192.0.2.13 f@ok-mx.mxs.test r1@ok-mx.mxs.test "" "$EVIL"
} | policy "$(conf enforce)"
sync_log
# monitor mode, key=value
{
	req B1 192.0.2.20 g@null-mx.mxs.test r1@ok-mx.mxs.test
	req B1 192.0.2.20 g@null-mx.mxs.test r2@ok-mx.mxs.test
	req B2 192.0.2.20 h@nonexistent.mxs.test r1@null-mx.mxs.test
} | policy "$(conf monitor 'mode = "monitor";')"
sync_log
n_kv=$(grep -cE ' mxsane-policyd\[[0-9]+\]: (queue_id=[^ ]+ )?verdict=' "$LOG")
# JSON records
{
	req C1 192.0.2.30 i@null-mx.mxs.test r1@ok-mx.mxs.test
	req C1 192.0.2.30 i@null-mx.mxs.test r2@ok-mx.mxs.test
} | policy "$(conf json 'log = { format = "json"; };')"
sync_log

assert_match "rsyslog wrote Debian 12's RFC 3339 time" \
	'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2} [^ ]+ mxsane-policyd\[[0-9]+\]: verdict=null_mx action=reject role=sender ' \
	"$(grep -m 1 'verdict=' "$LOG")"
# a refused or deferred sender ends the checks of its request: enforce A1 2, A2 1, A3 6, A4 1,
# A5 1, A6 2; monitor (nothing ends them) B1 4, B2 2
assert_eq "key=value decision lines in mail.log" 19 "$n_kv"
assert_eq "JSON decision lines in mail.log" 2 "$(grep -c 'mxsane-policyd\[[0-9]*\]: {"time":"' "$LOG")"
[ -s "$T_DIR/policyd.err" ] && not_ok "nothing on the daemons' stderr" "$(head -3 "$T_DIR/policyd.err")"

# ---- the recipes, from the README
"$PY" - "$MXS_TOP/README" "$T_DIR" "$LOG" <<'EOF'
import os, re, sys
readme, d, log = sys.argv[1:]
text = open(readme).read()
start = text.index("pose as a field in what follows:\n\n") + len("pose as a field in what follows:\n\n")
block = []
for line in text[start:].split("\n"):
    if not line.startswith("    "):
        break
    block.append(line[4:].replace("/var/log/mail.log", log))
prelude, recipes, cur = [], [], None
for line in block:
    if line.startswith("# "):
        cur = [line[2:], []]
        recipes.append(cur)
    elif cur is None:
        prelude.append(line)
    else:
        cur[1].append(line)
os.makedirs(os.path.join(d, "recipes"))
for i, (title, body) in enumerate(recipes):
    with open(os.path.join(d, "recipes", "%02d.sh" % i), "w") as f:
        f.write("# " + title + "\nset -o pipefail\n" + "\n".join(prelude) + "\n" + "\n".join(body) + "\n")
print(len(recipes))
EOF
[ -d "$T_DIR/recipes" ] || { not_ok "README recipes found" "no recipe block"; finish; }

# run_recipe: its output, leading blanks of uniq -c removed
run_recipe() { bash "$1" 2>"$T_DIR/recipe.err" | sed -E 's/^ +//'; }
known=0
for r in "$T_DIR"/recipes/*.sh; do
	title=$(head -n 1 "$r" | cut -c3-)
	out=$(run_recipe "$r")
	[ -s "$T_DIR/recipe.err" ] && not_ok "recipe '$title' runs without error" "$(cat "$T_DIR/recipe.err")"
	case $title in
	"what was refused (monitor mode: would have been), by verdict and action"*)
		known=$((known + 1))
		assert_eq "recipe: $title" \
			"3 verdict=null_mx action=reject|2 verdict=null_mx action=warn would=reject|1 verdict=nxdomain action=reject|1 verdict=nxdomain action=warn would=reject" \
			"$(LC_ALL=C sort -k2 <<<"$out" | paste -sd'|')"
		;;
	"top sender domains refused"*)
		known=$((known + 1))
		assert_eq "recipe: $title" "3 domain=null-mx.mxs.test|2 domain=nonexistent.mxs.test" \
			"$(paste -sd'|' <<<"$out")"
		;;
	"which clients send from null-MX or nonexistent domains"*)
		known=$((known + 1))
		assert_eq "recipe: $title" \
			"1 client_addr=192.0.2.10 domain=nonexistent.mxs.test|1 client_addr=192.0.2.10 domain=null-mx.mxs.test|1 client_addr=192.0.2.12 domain=null-mx.mxs.test|1 client_addr=192.0.2.20 domain=nonexistent.mxs.test|1 client_addr=192.0.2.20 domain=null-mx.mxs.test" \
			"$(LC_ALL=C sort -k2 <<<"$out" | paste -sd'|')"
		;;
	"monitor mode (a rollout)"*)
		known=$((known + 1))
		assert_eq "recipe: $title" \
			"1 recipient null_mx reject|1 sender null_mx reject|1 sender nxdomain reject" \
			"$(LC_ALL=C sort -k2 <<<"$out" | paste -sd'|')"
		;;
	"was a given message checked"*)
		known=$((known + 1))
		assert_eq "recipe: $title" "4: ok sender x@null-mx.mxs.test, null_mx recipient x@null-mx.mxs.test, ok sender y@mx-target-nx.mxs.test, broken_mx recipient y@mx-target-nx.mxs.test" \
			"$(grep -c queue_id=91A8DA72FCB <<<"$out"): $(sed -E 's/.* verdict=([a-z_]+) .* role=([a-z]+) .* recipient=([^ ]+) .*/\1 \2 \3/' <<<"$out" | paste -sd',' | sed 's/,/, /g')"
		;;
	"DNS trouble"*)
		known=$((known + 1))
		minute=$(grep -E 'mxsane-policyd\[[0-9]+\]: verdict=dns_error' "$LOG" | cut -c1-16)
		assert_match "recipe: $title" "^1 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}\$" "$out"
		assert_eq "recipe: $title: the minute of the line" "1 $minute" "$out"
		;;
	"JSON records"*)
		known=$((known + 1))
		assert_eq "recipe: $title" "1 null-mx.mxs.test" "$out"
		;;
	"... decisions per hour"*)
		known=$((known + 1))
		assert_eq "recipe: $title" "1 $(grep -o '"time":"[^"]*' "$LOG" | head -n 1 | cut -c9-21)" "$out"
		;;
	*) not_ok "README recipe '$title' is checked by this test" "unknown recipe" ;;
	esac
done
assert_eq "every README recipe was run" "$(ls "$T_DIR"/recipes | wc -l) 8" "$known $(ls "$T_DIR"/recipes | wc -l)"

# ---- mxsane-report on the same mail.log agrees
out=$("$BUILD_DIR/mxsane-report" --json "$LOG")
got=$("$PY" -c '
import json, sys
r = json.load(sys.stdin)
print(" ".join("%s:%d:%d" % (x["domain"], x["refused"], x["would_refuse"]) for x in r["senders"]))
print(" ".join(sorted("%s=%d" % (x["client_addr"], x["messages"]) for x in r["clients"])))
print(r["input"]["decisions"], r["input"]["repeated_sender_lines"], r["input"]["bad_lines"])' <<<"$out")
assert_eq "mxsane-report: refused and would-refuse sender domains, per message (kv and JSON)" \
	"null-mx.mxs.test:3:1 nonexistent.mxs.test:1:1" "$(sed -n 1p <<<"$got")"
assert_eq "mxsane-report: clients from null-MX or nonexistent domains" \
	"192.0.2.10=2 192.0.2.12=1 192.0.2.20=2 192.0.2.30=1" "$(sed -n 2p <<<"$got")"
assert_eq "mxsane-report: decisions, repeats, bad lines" "16 5 0" "$(sed -n 3p <<<"$got")"
assert_eq "the hostile HELO did not make a domain of its own" "" "$(grep victim <<<"$out")"
cp "$LOG" "$BUILD_DIR/test-logs/71-mail.log" 2>/dev/null
finish

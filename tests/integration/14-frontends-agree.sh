#!/usr/bin/env bash
# 14-frontends-agree.sh - every front-end reaches the same verdict for the same DNS.
#
# Each line of tests/zones/agree.tsv (NAME, ROLE, expected verdict, note) goes through
#   check    mxsane-check -j -r ROLE ADDRESS                       (the "verdict" of its JSON)
#   policyd  mxsane-policyd, a policy request at RCPT with ADDRESS as sender or recipient
#   milter   mxsane-milter driven by miltertest (tests/milter/session.lua): MAIL FROM or
#            RCPT TO with ADDRESS
# where ADDRESS is rowNNN@NAME, NNN the line's number among the cases.  The daemons' verdicts
# are read from their decision log lines (verdict=... role=ROLE ... rowNNN@NAME).  All three
# must agree, and give the expected verdict.
#
# The front-ends do not ask DNS in the same order (mxsane-check asks a host's A and AAAA at
# once, the daemons ask AAAA only when A gave nothing usable), so the table holds hosts whose
# A and AAAA lookups behave differently (faultdns.py's a-<B>--aaaa-<B>) besides every single
# fault and a selection of the knotd-served verdicts.
#
# Names under fault.test are served by tests/tools/faultdns.py, all others by knotd: each
# daemon runs twice, once per server, so every lookup meets exactly one server and a silent
# one costs the same budget everywhere.  resolver.timeout_ms is 1500 for all; the cache is
# on, dns_error results are not cached (cache.error_ttl = 0) so every row meets its fault.
# Rows run concurrently, except rows whose names contain "trunc": in a daemon, a TCP reset
# costs every query pending on the resolver channel a try (docs/robustness.md), which would
# disturb the other rows; they run one at a time after the rest.
#
# Environment: AGREE_TABLE (default tests/zones/agree.tsv), AGREE_PAR (concurrent processes
# for mxsane-check and miltertest, default 12, 3 under valgrind).
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-check mxsane-policyd mxsane-milter
need_cmd miltertest
CHECK="$BUILD_DIR/mxsane-check"
POLICYD="$BUILD_DIR/mxsane-policyd"
MILTER="$BUILD_DIR/mxsane-milter"
LUA="$MXS_TOP/tests/milter/session.lua"
TABLE="${AGREE_TABLE:-$MXS_TOP/tests/zones/agree.tsv}"
# Under valgrind (make check VALGRIND=1) every process is ~20x heavier: fewer at once.
PAR="${AGREE_PAR:-$([ "${MXS_VALGRIND:-0}" = 1 ] && echo 3 || echo 12)}"
TIMEOUT_MS=1500
T0=$(now_ms)

start_knot || { not_ok "knotd starts" "see the log above"; finish; }
start_faultdns || { not_ok "faultdns starts" "see the log above"; finish; }
echo "# knotd on 127.0.0.1:$KNOT_PORT, faultdns on 127.0.0.1:$FAULT_PORT"

# conf FILE DNS_PORT
conf() {
	cat >"$1" <<EOC
resolver = { servers = [ "127.0.0.1:$2" ]; timeout_ms = $TIMEOUT_MS; };
cache = { error_ttl = 0; };
log = { format = "kv"; };
EOC
}
conf "$T_DIR/knot.conf" "$KNOT_PORT"
conf "$T_DIR/fault.conf" "$FAULT_PORT"

# Daemons, one per server: PD_PORT[knot|fault], MT_PORT[...], DAEMON_PID[policyd-knot...];
# logs $T_DIR/policyd-knot.log, milter-knot.log, policyd-fault.log, milter-fault.log.
declare -A PD_PORT=() MT_PORT=() DAEMON_PID=()
for s in knot fault; do
	start_on_free_port "policyd-$s" "$POLICYD" -f -u root -c "$T_DIR/$s.conf" \
		-l "inet:127.0.0.1:{PORT}" || { not_ok "mxsane-policyd ($s) starts" "see above"; finish; }
	PD_PORT[$s]=$BG_PORT DAEMON_PID[policyd-$s]=$BG_PID
	start_on_free_port "milter-$s" "$MILTER" -f -u root -c "$T_DIR/$s.conf" \
		-p "inet:{PORT}@127.0.0.1" || { not_ok "mxsane-milter ($s) starts" "see above"; finish; }
	MT_PORT[$s]=$BG_PORT DAEMON_PID[milter-$s]=$BG_PID
done

# ---- the table ----
NAME=() ROLE=() WANT=() NOTE=() SRV=() ADDR=()
while IFS=$'\t' read -r name role want note; do
	case $name in '#'* | '') continue ;; esac
	i=${#NAME[@]}
	NAME+=("$name") ROLE+=("$role") WANT+=("$want") NOTE+=("$note")
	case $name in *.fault.test) SRV+=(fault) ;; *) SRV+=(knot) ;; esac
	ADDR+=("$(printf 'row%03d' "$i")@$name")
done <"$TABLE"
N=${#NAME[@]}
[ "$N" -gt 0 ] || { not_ok "table read" "no cases in $TABLE"; finish; }
# Row order: concurrent rows first, then the "trunc" rows one at a time.
CONC=() SERIAL=()
for ((i = 0; i < N; i++)); do
	case ${NAME[$i]} in *trunc*) SERIAL+=("$i") ;; *) CONC+=("$i") ;; esac
done

# run_rows FUNC: FUNC I for every row, PAR at once for CONC, then SERIAL one by one.  Waits
# for its own jobs only (a plain `wait` would wait for the servers too).
run_rows() {
	local fn=$1 i p done_pid
	local -A jobs=()
	for i in "${CONC[@]}"; do
		"$fn" "$i" &
		jobs[$!]=1
		if [ "${#jobs[@]}" -ge "$PAR" ]; then
			wait -n -p done_pid "${!jobs[@]}"
			unset "jobs[$done_pid]"
		fi
	done
	for p in "${!jobs[@]}"; do
		wait "$p"
	done
	for i in "${SERIAL[@]+"${SERIAL[@]}"}"; do
		"$fn" "$i"
	done
}

mkdir -p "$T_DIR/check" "$T_DIR/milter"

# ---- (a) mxsane-check ----
check_row() {
	local i=$1
	timeout -k 5 30 "$CHECK" -c "$T_DIR/${SRV[$i]}.conf" -r "${ROLE[$i]}" -j "${ADDR[$i]}" \
		>"$T_DIR/check/$i.out" 2>"$T_DIR/check/$i.err"
	echo "$?" >"$T_DIR/check/$i.rc"
}
t=$(now_ms)
run_rows check_row
echo "# mxsane-check: $N rows in $(($(now_ms) - t)) ms"

# ---- (b) mxsane-policyd: one connection per row, rows of CONC at once ----
{
	for i in "${CONC[@]}"; do echo "C $i ${PD_PORT[${SRV[$i]}]} ${ROLE[$i]} ${ADDR[$i]}"; done
	for i in "${SERIAL[@]+"${SERIAL[@]}"}"; do
		echo "S $i ${PD_PORT[${SRV[$i]}]} ${ROLE[$i]} ${ADDR[$i]}"
	done
} >"$T_DIR/policy.rows"
t=$(now_ms)
timeout -k 5 120 "$PY" - "$T_DIR/policy.rows" >"$T_DIR/policy.replies" 2>&1 <<'EOPY'
import socket, sys, threading

# The other role of the request is one mxsane never checks (the null sender, an address
# literal), so the decision logged for ROLE is the only one.
def ask(i, port, role, addr, out):
    sender, rcpt = (addr, "postmaster@[192.0.2.1]") if role == "sender" else ("", addr)
    req = ("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.10\n"
           "sender=%s\nrecipient=%s\n\n" % (sender, rcpt)).encode()
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
        s.sendall(req)
        data = b""
        while b"\n\n" not in data:
            d = s.recv(4096)
            if not d:
                break
            data += d
        s.close()
        out[i] = data.decode(errors="replace").split("\n")[0] or "<closed without reply>"
    except OSError as e:
        out[i] = "<socket error: %s>" % e

rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
out = {}
ths = [threading.Thread(target=ask, args=(r[1], r[2], r[3], r[4], out)) for r in rows if r[0] == "C"]
for t in ths: t.start()
for t in ths: t.join()
for r in rows:
    if r[0] == "S":
        ask(r[1], r[2], r[3], r[4], out)
for r in rows:
    print("%s\t%s" % (r[1], out.get(r[1], "<not asked>")))
EOPY
echo "# mxsane-policyd: $N rows in $(($(now_ms) - t)) ms"
declare -A PD_REPLY=()
while IFS=$'\t' read -r i r; do PD_REPLY[$i]=$r; done <"$T_DIR/policy.replies"

# ---- (c) mxsane-milter through miltertest ----
milter_row() {
	local i=$1 args
	args=(-D "sock=inet:${MT_PORT[${SRV[$i]}]}@127.0.0.1")
	if [ "${ROLE[$i]}" = sender ]; then
		args+=(-D "from=<${ADDR[$i]}>")
	else
		args+=(-D "from=<>" -D "rcpts=<${ADDR[$i]}>")
	fi
	timeout -k 5 60 miltertest -s "$LUA" "${args[@]}" >"$T_DIR/milter/$i.out" 2>&1
}
t=$(now_ms)
run_rows milter_row
echo "# mxsane-milter: $N rows in $(($(now_ms) - t)) ms"

# ---- verdicts ----
# log_verdict LOG I: the verdict of row I's decision line in LOG; "<none>" when there is
# none (after waiting until LOG_DEADLINE: mxsane-policyd writes the lines of one pass of its
# event loop together, just after the answers), "<N lines: ...>" when there are several.
log_verdict() {
	local lines n
	while :; do
		lines=$(grep -F -- "${ADDR[$2]}" "$1" | grep -E "(^| )role=${ROLE[$2]}( |$)" |
			grep -oE '(^| )verdict=[a-z_]+' | sed 's/.*verdict=//')
		n=$(grep -c . <<<"$lines")
		[ "$n" -eq 0 ] && [ "$(now_ms)" -lt "$LOG_DEADLINE" ] || break
		sleep 0.1
	done
	case $n in
	0) echo "<none>" ;;
	1) echo "$lines" ;;
	*) echo "<$n lines: $(tr '\n' ' ' <<<"$lines")>" ;;
	esac
}

LOG_DEADLINE=$(($(now_ms) + 3000))
printf '# %-3s  %-12s %-12s %-12s | %-12s %s\n' row check policyd milter expected "name (role) -- note"
for ((i = 0; i < N; i++)); do
	t="${NAME[$i]} (${ROLE[$i]})"
	json_fields "$(sed -n 1p "$T_DIR/check/$i.out")"
	if [ -n "${JF[_error]:-}" ]; then
		vc="<rc=$(cat "$T_DIR/check/$i.rc") $(head -c 200 "$T_DIR/check/$i.err")>"
	else
		vc=${JF[verdict]:-<missing>}
	fi
	creason=${JF[reason]:-}
	vp=$(log_verdict "$T_DIR/policyd-${SRV[$i]}.log" "$i")
	vm=$(log_verdict "$T_DIR/milter-${SRV[$i]}.log" "$i")
	printf '# %03d  %-12s %-12s %-12s | %-12s %s -- %s\n' "$i" "$vc" "$vp" "$vm" "${WANT[$i]}" \
		"$t" "${NOTE[$i]}"
	if [ "$vc" = "$vp" ] && [ "$vp" = "$vm" ]; then
		ok "$t: check, policyd and milter agree ($vc)"
	else
		not_ok "$t: check, policyd and milter agree" \
			"check=$vc policyd=$vp milter=$vm (check: $creason; policyd: ${PD_REPLY[$i]:-?}; milter: $(grep -E '^(mail|rcpt)' "$T_DIR/milter/$i.out" | tr '\n' ' '))"
	fi
	assert_eq "$t: verdict ${WANT[$i]} from check, policyd, milter" \
		"${WANT[$i]} ${WANT[$i]} ${WANT[$i]}" "$vc $vp $vm"
done

for d in "${!DAEMON_PID[@]}"; do
	f="$T_DIR/$d.log"
	kill -0 "${DAEMON_PID[$d]}" 2>/dev/null && ok "$d still running" ||
		not_ok "$d still running" "$(tail -n 5 "$f")"
	if grep -qE 'Sanitizer|runtime error' "$f"; then
		not_ok "no sanitizer findings in ${f##*/}" "$(grep -m3 -E 'Sanitizer|runtime error' "$f")"
	fi
done
echo "# $N rows, $(($(now_ms) - T0)) ms in all"
finish

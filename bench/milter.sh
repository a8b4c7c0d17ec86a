#!/usr/bin/env bash
# bench/milter.sh - the milter scenario of bench/run: an isolated Postfix 3.7
# (tests/lib/postfix.sh: every domain relayed to discard(8)) fed by smtp-source with 20
# parallel sessions, one SMTP connection per message unless said otherwise, in these
# configurations:
#   nomilter   no checks at all: the reference
#   milter0    smtpd_milters = mxsane-milter (cache warm after the first message), 0 ms DNS,
#              over a unix socket as the Debian package sets it up
#   nullmilter smtpd_milters = bench/null-milter: libmilter, the same protocol steps, no checks
#              (what any libmilter filter costs Postfix here; mxsane's own share is the rest)
#   milter0tcp milter0 over loopback TCP (milter.socket inet:, the default without the package)
#   own0       Postfix's reject_unknown_sender_domain, reject_unknown_recipient_domain, 0 ms
#   nomilter-reuse, milter0-reuse
#              nomilter and milter0 with smtp-source -d: the 20 connections carry all the
#              messages (a client that reuses its connection; the milter's per-connection
#              work is paid 20 times, its per-message work once per message)
#   milter20   mxsane-milter whose resolver answers in 20 ms
#   own20      Postfix's own checks through the 20 ms resolver
# Side by side: the configurations are smtpd services of one Postfix instance, on ports of
# their own (POSTFIX_MASTER_EXTRA, with -o overrides), so they share everything else - one
# cleanup, qmgr and discard, warm - and are run in rounds of short slices (MSGS / ROUNDS
# messages each, rotating the order) instead of one long run each: the machine's speed
# drifts over seconds, and each slice is compared with the reference slice of its own round.
# own20 needs the system resolver pointed at the 20 ms front: it and milter20 have a second
# instance.  Postfix has no DNS cache of its own: its checks ask for every message.
# Input (environment): REPS MSGS ROUNDS F0_PORT F20_PORT RESOLV_DIR (holds resolv-0.conf
# and resolv-20.conf) SENDER_DOMAIN RCPT_DOMAIN RAW.
# Appends "milter REP.ROUND CONFIG MSGS_PER_S 0 0 extra" lines to $RAW.
. "$(dirname "$0")/../tests/lib/common.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

[ -x "$BUILD_DIR/mxsane-milter" ] || { echo "milter.sh: mxsane-milter not built" >&2; exit 2; }
ROUNDS=${ROUNDS:-10}
SLICE=$((MSGS / ROUNDS))
[ "$SLICE" -ge 1 ] || SLICE=1

# The milters' unix sockets: in a directory Postfix's processes (user postfix) can search;
# the instance runs without chroot, so the path is the same inside it.
SOCK_DIR=$(mktemp -d /run/mxsane-bench.XXXXXX) || exit 2
chmod 755 "$SOCK_DIR"
at_cleanup "rm -rf $SOCK_DIR"
mxsane_conf() { # name dns_port
	cat >"$T_DIR/$1.conf" <<-EOF
		resolver = { servers = [ "127.0.0.1:$2" ]; timeout_ms = 3000; };
		cache = { max_entries = 2000000; };
	EOF
}
start_milter_unix() { # name dns_port [binary] -> MSOCK (socket 0660 nobody:postfix, as the package's)
	mxsane_conf "$1" "$2"
	start_bg "$1" "${3:-$BUILD_DIR/mxsane-milter}" -f -u nobody:postfix -c "$T_DIR/$1.conf" \
		-p "unix:$SOCK_DIR/$1.sock"
	wait_file "$SOCK_DIR/$1.sock" 5 || return 1
	MSOCK="unix:$SOCK_DIR/$1.sock"
}
start_milter_unix m0 "$F0_PORT" || { echo "milter.sh: mxsane-milter does not start" >&2; exit 2; }
M0=$MSOCK
M0BASE= # BENCH_BASE_BUILD: the other version's milter, side by side (variant milter0base)
if [ -n "${BENCH_BASE_BUILD:-}" ]; then
	start_milter_unix m0base "$F0_PORT" "$BENCH_BASE_BUILD/mxsane-milter" || exit 2
	M0BASE=$MSOCK
fi
start_milter_unix m20 "$F20_PORT" || exit 2
M20=$MSOCK
mxsane_conf m0tcp "$F0_PORT"
start_on_free_port m0tcp "$BUILD_DIR/mxsane-milter" -f -u nobody:nogroup \
	-c "$T_DIR/m0tcp.conf" -p "inet:{PORT}@127.0.0.1" || exit 2
M0TCP="inet:127.0.0.1:$BG_PORT"
NULLM=
if [ -x "$BUILD_DIR/bench/null-milter" ]; then
	start_bg null-milter "$BUILD_DIR/bench/null-milter" "unix:$SOCK_DIR/null.sock"
	if wait_file "$SOCK_DIR/null.sock" 5; then
		chmod 666 "$SOCK_DIR/null.sock" # it runs as root; smtpd as postfix
		NULLM="unix:$SOCK_DIR/null.sock"
	fi
fi
[ -n "$NULLM" ] || echo "milter.sh: null-milter does not start: no libmilter reference" >&2

OWN="reject_unknown_sender_domain,reject_unknown_recipient_domain"
MOPTS="-o milter_protocol=6 -o milter_default_action=tempfail"
declare -A PORT_OF

# service NAME -o ... : a master.cf smtpd service on a port of its own for configuration NAME
service() {
	local name=$1 port
	shift
	port=$(free_port) || return 1
	PORT_OF[$name]=$port
	POSTFIX_MASTER_EXTRA+="127.0.0.1:$port inet n - n - - smtpd $*"$'\n'
}

# start_instance RESOLV MAIN_CONFIG [main.cf lines...]: the services are in
# POSTFIX_MASTER_EXTRA already; the main port serves MAIN_CONFIG
start_instance() {
	local resolv=$1 main=$2
	shift 2
	start_postfix "default_process_limit = 100" "$@" || { echo "postfix does not start" >&2; return 1; }
	PORT_OF[$main]=$POSTFIX_PORT
	# tests/lib/postfix.sh binds its own resolv.conf (127.0.0.1, no server) over the
	# instance's /etc/resolv.conf: point it at the front, in place (the bind mount refers to
	# the file's inode), before any smtpd process starts
	cat "$RESOLV_DIR/resolv-$resolv.conf" >"$POSTFIX_DIR/ns/resolv.conf"
	[ "$(postfix_exec cat /etc/resolv.conf)" = "$(cat "$RESOLV_DIR/resolv-$resolv.conf")" ] ||
		{ echo "milter.sh: could not point the instance's resolv.conf at the front" >&2; return 1; }
}

SENT=0
# slice LABEL CONFIG [-d]: SLICE messages through CONFIG's port; records the rate
slice() {
	local label=$1 cfg=$2 t0 t1 rate errs
	shift 2
	t0=$(date +%s%N)
	smtp-source "$@" -s 20 -m "$SLICE" -f "s@$SENDER_DOMAIN" -t "r@$RCPT_DOMAIN" \
		"127.0.0.1:${PORT_OF[$cfg]}" >"$T_DIR/source.out" 2>&1
	t1=$(date +%s%N)
	errs=$(grep -c -i -E 'error|fatal|warning' "$T_DIR/source.out")
	rate=$(awk -v n="$SLICE" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", n / ((b - a) / 1e9)}')
	echo "   $cfg $label: $SLICE messages in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1e9}') s = $rate msg/s"
	[ "$errs" = 0 ] || { echo "     $errs smtp-source errors:"; head -3 "$T_DIR/source.out" | sed 's/^/     /'; }
	printf 'milter\t%s\t%s\t%s\t0\t0\tsource_errors=%s\n' "$label" "$cfg" "$rate" "$errs" >>"$RAW"
	SENT=$((SENT + SLICE))
}

# rounds REP CONFIG...: ROUNDS rounds, each a slice of every configuration, the order
# rotating; the first message of each configuration warms its milter and resolver path
rounds() {
	local rep=$1 r k n cfg
	shift
	local cfgs=("$@")
	n=${#cfgs[@]}
	for cfg in "${cfgs[@]}"; do
		smtp-source -s 1 -m 1 -f "s@$SENDER_DOMAIN" -t "r@$RCPT_DOMAIN" \
			"127.0.0.1:${PORT_OF[$cfg]}" >/dev/null 2>&1
		SENT=$((SENT + 1))
	done
	for r in $(seq "$ROUNDS"); do
		for k in $(seq 0 $((n - 1))); do
			cfg=${cfgs[$(((k + r + rep) % n))]}
			case $cfg in
			*-reuse) slice "$rep.$r" "$cfg" -d ;;
			*) slice "$rep.$r" "$cfg" ;;
			esac
		done
	done
}

# what Postfix made of it: every message queued, none rejected
check_instance() {
	local queued rejected
	queued=$(grep -c 'cleanup.*: message-id=' "$POSTFIX_LOG")
	rejected=$(grep -c -E 'NOQUEUE: (reject|milter-reject)' "$POSTFIX_LOG")
	echo "   postfix: $SENT messages sent, $queued queued, $rejected rejected"
	printf 'milter\t0\tinstance\t0\t0\t0\tsent=%s queued=%s rejected=%s\n' "$SENT" "$queued" \
		"$rejected" >>"$RAW"
}

for rep in $(seq "$REPS"); do
	# 0 ms DNS: the reference and the configurations compared with it
	POSTFIX_MASTER_EXTRA=
	service milter0 -o "smtpd_milters=$M0" $MOPTS || exit 2
	service milter0-reuse -o "smtpd_milters=$M0" $MOPTS || exit 2
	service milter0tcp -o "smtpd_milters=$M0TCP" $MOPTS || exit 2
	[ -n "$NULLM" ] && { service nullmilter -o "smtpd_milters=$NULLM" $MOPTS || exit 2; }
	[ -n "$M0BASE" ] && { service milter0base -o "smtpd_milters=$M0BASE" $MOPTS || exit 2; }
	service own0 -o "smtpd_recipient_restrictions=$OWN" || exit 2
	service nomilter-reuse || exit 2
	SENT=0
	start_instance 0 nomilter || exit 2
	cfgs=(nomilter milter0 milter0tcp own0 nomilter-reuse milter0-reuse)
	[ -n "$NULLM" ] && cfgs+=(nullmilter)
	[ -n "$M0BASE" ] && cfgs+=(milter0base)
	rounds "$rep" "${cfgs[@]}"
	check_instance
	stop_postfix

	# 20 ms DNS: mxsane-milter against Postfix's own checks, both through the slow resolver
	POSTFIX_MASTER_EXTRA=
	service milter20 -o "smtpd_milters=$M20" -o "smtpd_recipient_restrictions=" $MOPTS || exit 2
	SENT=0
	start_instance 20 own20 "smtpd_recipient_restrictions = ${OWN/,/, }" || exit 2
	rounds "$rep" own20 milter20
	check_instance
	stop_postfix
done

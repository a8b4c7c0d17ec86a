#!/usr/bin/env bash
# bench/milter.sh - the milter scenario of bench/run: an isolated Postfix 3.7
# (tests/lib/postfix.sh: every domain relayed to discard(8)) fed by smtp-source, MSGS messages
# over 20 parallel sessions (one SMTP connection per message), in these configurations:
#   nomilter   no checks at all: the reference
#   milter0    smtpd_milters = mxsane-milter (cache warm after the first message), 0 ms DNS,
#              over a unix socket as the Debian package sets it up
#   nullmilter smtpd_milters = bench/null-milter: libmilter, the same protocol steps, no checks
#              (what any libmilter filter costs Postfix here; mxsane's own share is the rest)
#   own0       Postfix's reject_unknown_sender_domain, reject_unknown_recipient_domain, 0 ms
#   milter20   mxsane-milter whose resolver answers in 20 ms
#   own20      Postfix's own checks through the 20 ms resolver
#   milter0tcp milter0 over loopback TCP (milter.socket inet:, the default without the package)
#   nomilter-reuse, milter0-reuse
#              nomilter and milter0 with smtp-source -d: 20 SMTP connections carrying all
#              the messages (a client that reuses its connection; the milter's per-connection
#              work is paid 20 times, its per-message work MSGS times)
# Postfix has no DNS cache of its own: its checks ask the system resolver for every message.
# Runs alternate configurations, REPS times.  Postfix's resolver is pointed at the 0 ms or the
# 20 ms front through the instance's own resolv.conf (tests/lib/postfix.sh binds one over
# /etc/resolv.conf inside the instance's mount namespace).
# Input (environment): REPS MSGS F0_PORT F20_PORT RESOLV_DIR (holds resolv-0.conf and
# resolv-20.conf) SENDER_DOMAIN RCPT_DOMAIN RAW.
# Appends "milter REP CONFIG MSGS_PER_S 0 0 extra" lines to $RAW.
. "$(dirname "$0")/../tests/lib/common.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

[ -x "$BUILD_DIR/mxsane-milter" ] || { echo "milter.sh: mxsane-milter not built" >&2; exit 2; }

# The milters' unix sockets: in a directory Postfix's processes (user postfix) can search;
# the instance runs without chroot, so the path is the same inside it.
SOCK_DIR=$(mktemp -d /run/mxsane-bench.XXXXXX) || exit 2
chmod 755 "$SOCK_DIR"
at_cleanup "rm -rf $SOCK_DIR"
wait_socket() { # path
	local i
	for i in $(seq 100); do
		[ -S "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
mxsane_conf() { # name dns_port
	cat >"$T_DIR/$1.conf" <<-EOF
		resolver = { servers = [ "127.0.0.1:$2" ]; timeout_ms = 3000; };
		cache = { max_entries = 2000000; };
	EOF
}
start_milter_unix() { # name dns_port -> MSOCK (socket 0660 nobody:postfix, as the package's)
	mxsane_conf "$1" "$2"
	start_bg "$1" "$BUILD_DIR/mxsane-milter" -f -u nobody:postfix -c "$T_DIR/$1.conf" \
		-p "unix:$SOCK_DIR/$1.sock"
	wait_socket "$SOCK_DIR/$1.sock" || return 1
	MSOCK="unix:$SOCK_DIR/$1.sock"
}
start_milter_unix m0 "$F0_PORT" || { echo "milter.sh: mxsane-milter does not start" >&2; exit 2; }
M0=$MSOCK
start_milter_unix m20 "$F20_PORT" || exit 2
M20=$MSOCK
mxsane_conf m0tcp "$F0_PORT"
start_on_free_port m0tcp "$BUILD_DIR/mxsane-milter" -f -u nobody:nogroup \
	-c "$T_DIR/m0tcp.conf" -p "inet:{PORT}@127.0.0.1" || exit 2
M0TCP="inet:127.0.0.1:$BG_PORT"
NULLM=
if [ -x "$BUILD_DIR/bench/null-milter" ]; then
	start_bg null-milter "$BUILD_DIR/bench/null-milter" "unix:$SOCK_DIR/null.sock"
	if wait_socket "$SOCK_DIR/null.sock"; then
		chmod 666 "$SOCK_DIR/null.sock" # it runs as root; smtpd as postfix
		NULLM="unix:$SOCK_DIR/null.sock"
	fi
fi
[ -n "$NULLM" ] || echo "milter.sh: null-milter does not start: no libmilter reference" >&2

OWN="smtpd_recipient_restrictions = reject_unknown_sender_domain, reject_unknown_recipient_domain"
one_run() { # rep config
	local rep=$1 cfg=$2 args=() t0 t1 rate errs resolv=0 reuse=()
	case $cfg in
	nomilter | nomilter-reuse) ;;
	milter0 | milter0-reuse) args=("smtpd_milters = $M0") ;;
	milter0tcp) args=("smtpd_milters = $M0TCP") ;;
	milter20) args=("smtpd_milters = $M20") ;;
	nullmilter) [ -n "$NULLM" ] || return 0; args=("smtpd_milters = $NULLM") ;;
	own0) args=("$OWN") ;;
	own20) args=("$OWN"); resolv=20 ;;
	esac
	case $cfg in *-reuse) reuse=(-d) ;; esac
	case $cfg in milter* | nullmilter)
		args+=("milter_default_action = tempfail" "milter_protocol = 6") ;;
	esac
	start_postfix "default_process_limit = 100" "${args[@]}" || { echo "postfix does not start" >&2; return 1; }
	# tests/lib/postfix.sh binds its own resolv.conf (127.0.0.1, no server) over the
	# instance's /etc/resolv.conf: point it at the front, in place (the bind mount refers to
	# the file's inode), before any smtpd process starts
	cat "$RESOLV_DIR/resolv-$resolv.conf" >"$POSTFIX_DIR/ns/resolv.conf"
	[ "$(postfix_exec cat /etc/resolv.conf)" = "$(cat "$RESOLV_DIR/resolv-$resolv.conf")" ] ||
		{ echo "milter.sh: could not point the instance's resolv.conf at the front" >&2; return 1; }
	# one message first (connects the milter, warms its cache and the resolver path)
	smtp-source -s 1 -m 1 -f "s@$SENDER_DOMAIN" -t "r@$RCPT_DOMAIN" "127.0.0.1:$POSTFIX_PORT" \
		>/dev/null 2>&1
	t0=$(date +%s%N)
	smtp-source "${reuse[@]}" -s 20 -m "$MSGS" -f "s@$SENDER_DOMAIN" -t "r@$RCPT_DOMAIN" \
		"127.0.0.1:$POSTFIX_PORT" >"$T_DIR/source.out" 2>&1
	t1=$(date +%s%N)
	errs=$(grep -c -i -E 'error|fatal|warning' "$T_DIR/source.out")
	rate=$(awk -v n="$MSGS" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", n / ((b - a) / 1e9)}')
	# what Postfix made of it: accepted (queued) vs rejected
	local queued rejected
	queued=$(grep -c 'cleanup.*: message-id=' "$POSTFIX_LOG")
	rejected=$(grep -c -E 'NOQUEUE: (reject|milter-reject)' "$POSTFIX_LOG")
	echo "   $cfg rep $rep: $MSGS messages in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1e9}') s = $rate msg/s (smtp-source errors: $errs; postfix: $queued messages queued, $rejected rejected)"
	[ "$errs" = 0 ] || head -3 "$T_DIR/source.out" | sed 's/^/     /'
	printf 'milter\t%s\t%s\t%s\t0\t0\tsource_errors=%s rejected=%s\n' "$rep" "$cfg" "$rate" \
		"$errs" "$rejected" >>"$RAW"
	stop_postfix
}

for rep in $(seq "$REPS"); do
	if [ $((rep % 2)) = 1 ]; then
		order="nomilter milter0 nullmilter own0 milter20 own20 milter0tcp nomilter-reuse milter0-reuse"
	else
		order="milter0-reuse nomilter-reuse milter0tcp own20 milter20 own0 nullmilter milter0 nomilter"
	fi
	for cfg in $order; do
		one_run "$rep" "$cfg"
	done
done

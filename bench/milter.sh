#!/usr/bin/env bash
# bench/milter.sh - the milter scenario of bench/run: an isolated Postfix 3.7
# (tests/lib/postfix.sh: every domain relayed to discard(8)) fed by smtp-source, MSGS messages
# over 20 parallel sessions (one SMTP connection per message), in six configurations:
#   nomilter   no checks at all: the reference
#   milter0    smtpd_milters = mxsane-milter (cache warm after the first message), 0 ms DNS
#   nullmilter smtpd_milters = bench/null-milter: libmilter, the same protocol steps, no checks
#              (what any libmilter filter costs Postfix here; mxsane's own share is the rest)
#   own0       Postfix's reject_unknown_sender_domain, reject_unknown_recipient_domain, 0 ms
#   milter20   mxsane-milter whose resolver answers in 20 ms
#   own20      Postfix's own checks through the 20 ms resolver
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

start_milter() { # name dns_port -> MPORT
	cat >"$T_DIR/$1.conf" <<-EOF
		resolver = { servers = [ "127.0.0.1:$2" ]; timeout_ms = 3000; };
		cache = { max_entries = 2000000; };
	EOF
	start_on_free_port "$1" "$BUILD_DIR/mxsane-milter" -f -u nobody:nogroup \
		-c "$T_DIR/$1.conf" -p "inet:{PORT}@127.0.0.1" || return 1
	MPORT=$BG_PORT
}
start_milter m0 "$F0_PORT" || exit 2
M0=$MPORT
start_milter m20 "$F20_PORT" || exit 2
M20=$MPORT
NULLM=
if [ -x "$BUILD_DIR/bench/null-milter" ] &&
	start_on_free_port null-milter "$BUILD_DIR/bench/null-milter" "inet:{PORT}@127.0.0.1"; then
	NULLM=$BG_PORT
else
	echo "milter.sh: null-milter does not start: no libmilter reference" >&2
fi

OWN="smtpd_recipient_restrictions = reject_unknown_sender_domain, reject_unknown_recipient_domain"
one_run() { # rep config
	local rep=$1 cfg=$2 args=() t0 t1 rate errs resolv=0
	case $cfg in
	nomilter) ;;
	milter0) args=("smtpd_milters = inet:127.0.0.1:$M0") ;;
	milter20) args=("smtpd_milters = inet:127.0.0.1:$M20") ;;
	nullmilter) [ -n "$NULLM" ] || return 0; args=("smtpd_milters = inet:127.0.0.1:$NULLM") ;;
	own0) args=("$OWN") ;;
	own20) args=("$OWN"); resolv=20 ;;
	esac
	[ "$cfg" = milter0 ] || [ "$cfg" = milter20 ] || [ "$cfg" = nullmilter ] &&
		args+=("milter_default_action = tempfail" "milter_protocol = 6")
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
	smtp-source -s 20 -m "$MSGS" -f "s@$SENDER_DOMAIN" -t "r@$RCPT_DOMAIN" \
		"127.0.0.1:$POSTFIX_PORT" >"$T_DIR/source.out" 2>&1
	t1=$(date +%s%N)
	errs=$(grep -c -i -E 'error|fatal|warning' "$T_DIR/source.out")
	rate=$(awk -v n="$MSGS" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", n / ((b - a) / 1e9)}')
	# what Postfix made of it: accepted (queued) vs rejected
	local queued rejected
	queued=$(grep -c ': client=' "$POSTFIX_LOG")
	rejected=$(grep -c -E 'NOQUEUE: (reject|milter-reject)' "$POSTFIX_LOG")
	echo "   $cfg rep $rep: $MSGS messages in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1e9}') s = $rate msg/s (smtp-source errors: $errs; postfix: $queued sessions queued, $rejected rejected)"
	[ "$errs" = 0 ] || head -3 "$T_DIR/source.out" | sed 's/^/     /'
	printf 'milter\t%s\t%s\t%s\t0\t0\tsource_errors=%s rejected=%s\n' "$rep" "$cfg" "$rate" \
		"$errs" "$rejected" >>"$RAW"
	stop_postfix
}

for rep in $(seq "$REPS"); do
	if [ $((rep % 2)) = 1 ]; then
		order="nomilter milter0 nullmilter own0 milter20 own20"
	else
		order="own20 milter20 own0 nullmilter milter0 nomilter"
	fi
	for cfg in $order; do
		one_run "$rep" "$cfg"
	done
done

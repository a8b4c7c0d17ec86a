# tests/lib/postfix.sh - a real, isolated Postfix 3.7 for integration tests, plus the SMTP
# client side (swaks) shared with tests/lib/sendmail.sh.  Source after common.sh.
# See tests/lib/README-mta.md for the design; the contracts:
#
#   start_postfix [MAIN_CF_LINE...]
#       Starts one private Postfix instance (a second call stops the first) whose smtpd listens
#       on 127.0.0.1:$POSTFIX_PORT.  Every recipient domain is accepted and delivered to the
#       discard(8) transport; nothing is delivered anywhere.  Default restrictions:
#       smtpd_relay_restrictions = reject_unauth_destination (passes for every domain:
#       relay_domains = static:ALL) and an EMPTY smtpd_recipient_restrictions, so that
#         "smtpd_recipient_restrictions = reject_unauth_destination,
#                                        check_policy_service inet:127.0.0.1:PORT"
#       is evaluated for mail from 127.0.0.1 (no permit_mynetworks before it).
#       A MAIN_CF_LINE ("name = value") replaces the default of the same parameter, or is
#       added; e.g. "smtpd_milters = inet:127.0.0.1:PORT" "milter_default_action = tempfail".
#       Returns 1 (diagnostics on stderr) when Postfix does not come up; skips the script when
#       Postfix, swaks, root or namespaces are not available.  Takes about a second.
#       POSTFIX_MASTER_EXTRA, when set, is appended to master.cf: more smtpd services on other
#       loopback ports with "-o name=value" overrides (a benchmark compares configurations
#       side by side in one instance this way).
#       Exports POSTFIX_PORT, POSTFIX_LOG (the maillog file, a host path), POSTFIX_PID (host
#       PID of master), POSTFIX_DIR (etc/ = /etc/postfix, spool/ = /var/spool/postfix, lib/ =
#       /var/lib/postfix inside the instance).  Postfix runs without chroot; a unix: milter
#       or policy socket must be reachable by user postfix: put it under "$POSTFIX_DIR/spool/"
#       (a directory created after start_postfix, owned or searchable by postfix) and name it
#       unix:/var/spool/postfix/DIR/SOCK in main.cf, as on Debian.  inet: on 127.0.0.1 just
#       works.  The instance ends itself after POSTFIX_LIFETIME seconds (default 1800).
#       POSTFIX_INSTANCE=NAME start_postfix ...: a further instance beside the running one
#       (a fleet of MTAs), in $T_DIR/postfix-NAME; the exports then describe the new one (save
#       the first one's before), stop_postfix stops the newest, and every instance is stopped
#       on EXIT.
#   postfix_log                 print the mail log
#   postfix_wait_log ERE [SECS] wait (default 10 s) until a mail log line matches ERE (grep -E);
#                               prints that line; 1 on timeout
#   postfix_exec CMD...         run CMD inside the instance's mount and PID namespaces, where
#                               /etc/postfix, /var/spool/postfix, /var/lib/postfix are the
#                               instance's (e.g. postfix_exec postqueue -p; postfix_exec postconf)
#   postfix_reload              re-read main.cf/master.cf (edit "$POSTFIX_DIR/etc/main.cf" first);
#                               returns when master has logged the reload
#   stop_postfix                stop the instance and every process in it (also run on EXIT)
#
#   smtp_send FROM TO [TO...]   one SMTP session with swaks to 127.0.0.1:$POSTFIX_PORT (or
#                               $SMTP_PORT when set); prints the whole transcript; returns swaks'
#                               status (0 only when the message was accepted).  FROM may be ""
#                               for the null sender.  Extra swaks options: the array SWAKS_ARGS.
#                               Timeout per reply: ${SMTP_TIMEOUT:-15} s.
#   swaks_replies [FILE]        read a swaks transcript (FILE, or stdin) and print one line per
#                               command with the server's final reply line:
#                                 CONNECT 220 ...
#                                 EHLO 250 ...
#                                 MAIL 250 2.1.0 Ok
#                                 RCPT bob@x.test 556 5.1.10 <bob@x.test>: ...
#                                 DATA 250 2.0.0 Ok: queued as ...   (end of data; or the reply
#                                                                      to DATA if not 354)
#                                 QUIT 221 2.0.0 Bye
#   smtp_reply TRANSCRIPT STAGE [ADDR]
#                               the reply (code onwards) for one stage of a transcript held in
#                               a variable: smtp_reply "$tr" RCPT bob@x.test -> "556 5.1.10 ..."

if [ -n "${_MXS_POSTFIX_SH:-}" ]; then return 0; fi
_MXS_POSTFIX_SH=1

_PF_MASTER=/usr/lib/postfix/sbin/master
# postconf, postfix, mount and friends live in sbin; a CI shell's PATH may lack it.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
_PF_UNSHARE_PID=
_PF_EARLIER=() # the unshare PIDs of instances started before the current one

# Every instance, the current one and those started before it (POSTFIX_INSTANCE).
_pf_stop_all() {
	local up
	stop_postfix
	for up in "${_PF_EARLIER[@]+"${_PF_EARLIER[@]}"}"; do
		_PF_UNSHARE_PID=$up
		stop_postfix
	done
	_PF_EARLIER=()
}

# Cleanup hooks run by common.sh's EXIT trap before the tracked PIDs are stopped.
if declare -F at_cleanup >/dev/null; then
	at_cleanup _pf_stop_all
fi

# Skip the script unless this machine can run an isolated Postfix.
_pf_need() {
	[ -x "$_PF_MASTER" ] || skip "postfix not installed ($_PF_MASTER missing)"
	need_cmd unshare nsenter swaks postconf
	[ "$(id -u)" = 0 ] || skip "an isolated Postfix needs root (master, mount namespaces)"
	getent passwd postfix >/dev/null || skip "no postfix user"
	getent group postdrop >/dev/null || skip "no postdrop group"
	unshare -m -p --fork --mount-proc true 2>/dev/null ||
		skip "cannot create mount and PID namespaces (unshare -m -p failed)"
}

# Private config, queue and data directories, laid out as post-install would.
_pf_layout() {
	local d=$1 s="$1/spool"
	# Few commands: process creation is slow on some CI machines.
	mkdir -p "$d/etc"
	# The host's /etc/postfix is only read: dynamicmaps.cf, postfix-files, post-install and
	# postfix-script are needed by master and by "postfix check"/"postfix reload" inside.
	cp -a /etc/postfix/. "$d/etc/"
	rm -f "$d/etc/main.cf" "$d/etc/master.cf"
	install -d -m 755 "$s" "$s/pid"
	install -d -o postfix -g root -m 700 "$s/active" "$s/bounce" "$s/corrupt" "$s/defer" \
		"$s/deferred" "$s/flush" "$s/hold" "$s/incoming" "$s/private" "$s/saved" "$s/trace"
	install -d -o postfix -g postdrop -m 1730 "$s/maildrop"
	install -d -o postfix -g postdrop -m 2710 "$s/public"
	install -d -o postfix -g postfix -m 700 "$d/lib"
	_mta_ns_files "$d/ns"
}

# resolv.conf and nsswitch.conf bound over the host's inside an MTA's namespace: name lookups
# use files only, and a resolver query that slips through goes to 127.0.0.1:53, never to the
# host's name server.  (Also used by tests/lib/sendmail.sh.)
_mta_ns_files() {
	mkdir -p "$1"
	printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$1/resolv.conf"
	printf '%s\n' "passwd: files" "group: files" "shadow: files" "hosts: files" \
		"networks: files" "protocols: files" "services: files" "ethers: files" \
		"rpc: files" "netgroup: files" >"$1/nsswitch.conf"
}

_pf_main_cf() { # dir port log, extra lines...
	local d=$1 port=$2 log=$3 line name
	local -A over=()
	shift 3
	# A parameter set by the test replaces our default instead of following it: Postfix
	# would log "overriding earlier entry" from every process otherwise.
	for line in "$@"; do
		name=${line%%=*}
		name=${name//[[:space:]]/}
		[ -n "$name" ] && over[$name]=1
	done
	{
		echo "# Written by tests/lib/postfix.sh for one test instance.  Inside the instance's mount"
		echo "# namespace this directory is /etc/postfix; the host's /etc/postfix is not used."
		while IFS= read -r line; do
			name=${line%%=*}
			name=${name//[[:space:]]/}
			case $line in
			'#'* | '') ;;
			*) [ -n "${over[$name]+x}" ] && line="# (set by the test below) $line" ;;
			esac
			printf '%s\n' "$line"
		done <<EOF
compatibility_level = 3.6
myhostname = mx.mxs-harness.test
mydomain = mxs-harness.test
myorigin = \$myhostname
# Nothing is local: every domain is a relay domain, and every delivery is discard(8).
mydestination =
local_recipient_maps =
relay_domains = static:ALL
relay_recipient_maps =
transport_maps = static:discard
default_transport = discard
relay_transport = discard
local_transport = discard
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mynetworks_style = host
# Restrictions: see tests/lib/README-mta.md.  reject_unauth_destination passes for every
# domain (relay_domains = static:ALL); smtpd_recipient_restrictions is empty so that a test
# can put check_policy_service there and have it evaluated for mail from 127.0.0.1.
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
# No DNS from Postfix itself: the host's resolver is off limits for tests (and inside the
# namespace resolv.conf points at 127.0.0.1 only).
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
# Fast, deterministic tests.
smtpd_error_sleep_time = 0s
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 200
in_flow_delay = 0s
biff = no
append_dot_mydomain = no
smtputf8_enable = no
# Logging through postlogd(8) into a file of this instance.
maillog_file_prefixes = /var, /dev/stdout, $d
maillog_file = $log
EOF
		if [ $# -gt 0 ]; then
			echo "# Set by the test:"
			printf '%s\n' "$@"
		fi
	} >"$d/etc/main.cf"
}

_pf_master_cf() { # dir port
	local d=$1 port=$2
	# No chroot anywhere (last-but-three column "n"): the instance lives in the namespace.
	cat >"$d/etc/master.cf" <<EOF
# Written by tests/lib/postfix.sh: loopback smtpd on port $port, no chroot.
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	[ -z "${POSTFIX_MASTER_EXTRA:-}" ] || printf '%s\n' "$POSTFIX_MASTER_EXTRA" >>"$d/etc/master.cf"
}

# The host PID of the namespace's init (master), the only child of the unshare process.
# Builtins only (no subshell): this runs in polling loops.
_pf_child_of() { # unshare-pid varname
	local _k=
	read -r _k _ 2>/dev/null <"/proc/$1/task/$1/children"
	printf -v "$2" '%s' "$_k"
	[ -n "$_k" ]
}

# Does the maillog hold master's start line?  Builtins only.
_pf_started() {
	local _l
	while IFS= read -r _l; do
		[[ $_l == *"postfix/master["*"daemon started"* ]] && return 0
	done <"$1"
	return 1
}

start_postfix() {
	_pf_need
	local d="$T_DIR/postfix${POSTFIX_INSTANCE:+-$POSTFIX_INSTANCE}" attempt port up master deadline
	if [ -n "$_PF_UNSHARE_PID" ] && [ -n "${POSTFIX_INSTANCE:-}" ]; then
		_PF_EARLIER+=("$_PF_UNSHARE_PID")
		_PF_UNSHARE_PID=
	fi
	[ -n "$_PF_UNSHARE_PID" ] && stop_postfix
	for attempt in 1 2 3; do
		rm -rf "$d"
		_pf_layout "$d"
		port=$(free_port) || return 1
		_pf_main_cf "$d" "$port" "$d/maillog" "$@"
		_pf_master_cf "$d" "$port"
		# Postfix re-reads a "hot" main.cf (changed within the last second) after 300 ms
		# naps until it has cooled down: every daemon would wait ~1.5 s.  Age the files.
		touch -d "@$((EPOCHSECONDS - 60))" "$d/etc/main.cf" "$d/etc/master.cf"
		: >"$d/maillog"
		# (mount -n: no /run/mount/utab bookkeeping on the host.)
		# Inside new mount + PID namespaces: bind the instance's directories over the
		# default paths (so that any Postfix program, even one that ignores MAIL_CONFIG,
		# sees only the instance), then master becomes PID 1 of the namespace: when it
		# dies the kernel kills every process left in it.  -i: init mode (foreground, for
		# PID 1: on SIGTERM it stops its children and exits; -s would survive its own
		# SIGTERM as a namespace init).  -e: master exits by itself after
		# POSTFIX_LIFETIME seconds (default 1800), a safety net should this script be
		# killed before its EXIT trap runs.
		unshare -m -p --fork --mount-proc --kill-child --propagation private \
			/bin/sh -ec '
				mount -n --bind "$1/etc" /etc/postfix
				mount -n --bind "$1/spool" /var/spool/postfix
				mount -n --bind "$1/lib" /var/lib/postfix
				for f in resolv.conf nsswitch.conf; do
					mount -n --bind "$1/ns/$f" "/etc/$f" ||
						echo "postfix.sh: warning: could not bind over /etc/$f" >&2
				done
				exec "$2" -i -e "$3"' sh "$d" "$_PF_MASTER" "${POSTFIX_LIFETIME:-1800}" \
			</dev/null >>"$d/master.out" 2>&1 &
		up=$!
		track_pid "$up"
		_PF_UNSHARE_PID=$up
		master=
		deadline=$((EPOCHSECONDS + 10))
		while [ "$EPOCHSECONDS" -le "$deadline" ]; do
			[ -n "$master" ] || _pf_child_of "$up" master
			[ -n "$master" ] && _pf_started "$d/maillog" && break
			kill -0 "$up" 2>/dev/null || break
			sleep 0.05
		done
		if [ -n "$master" ] && kill -0 "$up" 2>/dev/null && _pf_started "$d/maillog"; then
			POSTFIX_PORT=$port
			POSTFIX_LOG=$d/maillog
			POSTFIX_PID=$master
			POSTFIX_DIR=$d
			export POSTFIX_PORT POSTFIX_LOG POSTFIX_PID POSTFIX_DIR
			return 0
		fi
		echo "start_postfix: attempt $attempt on port $port failed:" >&2
		stop_postfix
		_pf_diagnose "$d" "$port" || return 1
	done
	return 1
}

# Stop master: in init mode it passes SIGTERM to every process of the namespace and exits.
# As the namespace's PID 1, its end makes the kernel kill whatever might be left, and SIGKILL
# from outside the namespace is always delivered to it (the fallback).  No SIGKILL to the
# unshare process: the kernel's parent-death signal does not reach master (it drops it when
# master switches its effective uid).
stop_postfix() {
	local up=$_PF_UNSHARE_PID master i
	[ -n "$up" ] || return 0
	_PF_UNSHARE_PID=
	if _pf_child_of "$up" master; then
		kill -TERM "$master" 2>/dev/null
		for i in $(seq 50); do
			kill -0 "$up" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$up" 2>/dev/null; then
			echo "# postfix master $master ignored SIGTERM for 5 s, killing it" >&2
			kill -KILL "$master" 2>/dev/null
		fi
	fi
	stop_pid "$up" # reaps unshare (TERM, then KILL: it blocks TERM) and forgets the PID
	return 0
}

postfix_log() {
	cat "${POSTFIX_LOG:?start_postfix first}"
}

postfix_wait_log() {
	local re=$1 secs=${2:-10} i line
	for i in $(seq $((secs * 10))); do
		line=$(grep -E -m 1 -- "$re" "${POSTFIX_LOG:?start_postfix first}" 2>/dev/null) &&
			{ printf '%s\n' "$line"; return 0; }
		sleep 0.1
	done
	echo "postfix_wait_log: no line matching /$re/ after $secs s" >&2
	return 1
}

postfix_exec() {
	nsenter -t "${POSTFIX_PID:?start_postfix first}" -m -p -- "$@"
}

postfix_reload() {
	local d=${POSTFIX_DIR:?start_postfix first} before i
	# Aged, so that no daemon naps on a "hot" main.cf (see start_postfix).
	touch -d "@$((EPOCHSECONDS - 60))" "$d/etc/main.cf" "$d/etc/master.cf"
	before=$(grep -c 'postfix/master\[1\]: reload ' "$POSTFIX_LOG")
	kill -HUP "$POSTFIX_PID" || return 1
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c 'postfix/master\[1\]: reload ' "$POSTFIX_LOG")" -gt "$before" ] && return 0
		sleep 0.05
	done
	echo "postfix_reload: master did not log a reload within 5 s" >&2
	return 1
}

# Why did master not come up?  Its early fatal errors go to syslog only (which tests do not
# have), so look for the usual causes.  Returns 0 when the port was taken (worth a retry).
_pf_diagnose() { # dir port
	local d=$1 hex
	cat "$d/master.out" "$d/maillog" >&2 2>/dev/null
	printf -v hex '%04X' "$2"
	if grep -q "^ *[0-9]*: 0100007F:$hex 00000000:0000 0A " /proc/net/tcp; then
		echo "start_postfix: port $2 was taken by another process" >&2
		return 0
	fi
	# postconf reports main.cf syntax errors and unknown parameters on stderr.
	postconf -c "$d/etc" -n >/dev/null
	echo "start_postfix: master exited early; its start-up errors go to syslog only." \
		"Run the script with KEEP=1 and check $d/etc/main.cf" >&2
	return 1
}

# ---- SMTP client side (also used by tests/lib/sendmail.sh) ----

smtp_send() {
	local from=${1:-<>} to port=${SMTP_PORT:-${POSTFIX_PORT:-}}
	shift
	[ -n "$port" ] || { echo "smtp_send: no server (start_postfix first)" >&2; return 2; }
	[ $# -gt 0 ] || { echo "smtp_send: no recipient" >&2; return 2; }
	to=$(IFS=,; echo "$*")
	swaks --server 127.0.0.1 --port "$port" --timeout "${SMTP_TIMEOUT:-15}" \
		--helo client.mxs-harness.test --from "$from" --to "$to" \
		--header "Subject: mxsane harness test" --body "mxsane harness test message" \
		"${SWAKS_ARGS[@]+"${SWAKS_ARGS[@]}"}" </dev/null 2>&1
}

swaks_replies() {
	awk '
	function flush() {
		if (cmd != "" && reply != "") print cmd " " reply
		cmd = ""; reply = ""
	}
	# client lines: " -> X", "~> X" (TLS)
	/^ *~?-> / || /^ ~> / {
		line = $0; sub(/^ *~?-> /, "", line); sub(/^ ~> /, "", line); sub(/\r$/, "", line)
		if (indata) next                    # message text
		flush()
		u = toupper(line)
		if (u ~ /^EHLO/) cmd = "EHLO"
		else if (u ~ /^HELO/) cmd = "HELO"
		else if (u ~ /^MAIL FROM:/) cmd = "MAIL"
		else if (u ~ /^RCPT TO:/) {
			a = line; sub(/^[^:]*: *</, "", a); sub(/>.*$/, "", a); cmd = "RCPT " a
		}
		else if (u ~ /^DATA/) cmd = "DATA"
		else if (u ~ /^QUIT/) cmd = "QUIT"
		else if (u ~ /^STARTTLS/) cmd = "STARTTLS"
		else { split(line, w, " "); cmd = toupper(w[1]) }
		next
	}
	# server lines: "<-  220 x", "<** 550 x", "<~  250 x", "<~* 5xx"
	/^<[-~*][-~* ] / {
		line = $0; sub(/^<[-~*][-~* ] /, "", line); sub(/\r$/, "", line)
		if (!started) { started = 1; cmd = "CONNECT" }
		if (indata) { indata = 0; cmd = "DATA" }
		if (line ~ /^[0-9][0-9][0-9]-/) { if (reply == "") reply = line; next }
		reply = line
		if (cmd == "DATA" && line ~ /^354/ && !dotdone) { indata = 1; dotdone = 1; reply = ""; next }
		flush()
		next
	}
	END { flush() }
	' "${1:--}"
}

smtp_reply() {
	local stage=$2 addr=${3:-}
	local key=$stage
	[ -n "$addr" ] && key="$stage $addr"
	swaks_replies <<<"$1" | awk -v k="$key" '
		index($0, k " ") == 1 { print substr($0, length(k) + 2); found = 1; exit }
		END { if (!found) exit 1 }'
}

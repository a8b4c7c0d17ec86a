# tests/lib/sendmail.sh - a real Sendmail 8.17 (Debian's sendmail-bin, unpacked, not installed:
# the package conflicts with postfix) as an SMTP daemon on loopback for integration tests.
# Source after common.sh.  See tests/lib/README-mta.md for the design; the contracts:
#
#   start_sendmail MILTER_SOCKET [MC_LINE...]
#       Starts one Sendmail daemon (a second call stops the first) listening on
#       127.0.0.1:$SENDMAIL_PORT with
#         INPUT_MAIL_FILTER(`mxsane', `S=MILTER_SOCKET, F=T, T=C:10s;S:10s;R:10s;E:30s')
#       MILTER_SOCKET in libmilter syntax: inet:PORT@127.0.0.1 or unix:/path ("" = no
#       milter).  F=T: an unreachable milter tempfails the SMTP commands.  Any relay is
#       allowed (promiscuous_relay), any sender domain accepted, and mail is only queued in the
#       instance's private queue, never delivered (DeliveryMode queueonly, no queue runner).
#       Each MC_LINE is added to the .mc before the MAILER lines.
#       Returns 1 (with diagnostics on stderr) when Sendmail does not come up; skips the script
#       when Sendmail cannot be had (no cached .debs and apt-get download fails), or when m4,
#       swaks, root or namespaces are missing.
#       Exports SENDMAIL_PORT, SENDMAIL_PID (host PID of the daemon), SENDMAIL_DIR (cf, queue,
#       mc, traffic.log = every SMTP line of every session, sendmail.out), SENDMAIL_CF,
#       SENDMAIL_BIN.  SENDMAIL_DEBUG=64.5 (say) runs the daemon with -d64.5 (milter
#       debugging) into $SENDMAIL_DIR/sendmail.out.  The daemon ends itself after
#       SENDMAIL_LIFETIME seconds (default 1800).  Takes about a second.
#   sendmail_send FROM TO [TO...]   like smtp_send (tests/lib/postfix.sh) against Sendmail;
#                                   swaks_replies / smtp_reply read its transcript
#   sendmail_queue                  list the queue files (qf*) of the instance
#   sendmail_cmd ARG...             run the instance's sendmail binary with ARGs, the way the
#                                   daemon runs (its hosts, hostname, libraries; never on the
#                                   host as it is): e.g. sendmail_cmd -C "$SENDMAIL_CF" -bs
#   sendmail_msp_cf                 write a submit.cf for the instance: local submission as
#                                   Debian's sendmail(8) does it (the MSP queues in
#                                   $SENDMAIL_DIR/clientmqueue, runs as nobody, and relays by
#                                   SMTP to the daemon on 127.0.0.1:$SENDMAIL_PORT); exports
#                                   SENDMAIL_SUBMIT_CF.  Submit with
#                                   sendmail_cmd -C "$SENDMAIL_SUBMIT_CF" -f FROM TO...
#   stop_sendmail                   stop the daemon and every process in its namespace (also
#                                   run on EXIT)
#
# Sendmail comes from ${MXS_CACHE:-$MXS_TOP/build/cache}/sendmail: the .debs are fetched once
# with `apt-get download sendmail-bin sendmail-cf` (plus libwrap0 liblockfile1 when the system
# lacks those libraries) and unpacked there once.

if [ -n "${_MXS_SENDMAIL_SH:-}" ]; then return 0; fi
_MXS_SENDMAIL_SH=1

# The SMTP client helpers (smtp_send, swaks_replies, smtp_reply) live in postfix.sh.
. "$(dirname "${BASH_SOURCE[0]}")/postfix.sh"

_SM_UNSHARE_PID=
_SM_LIBPKGS="libwrap0 liblockfile1"

if declare -F at_cleanup >/dev/null; then
	at_cleanup stop_sendmail
fi

_sm_cache() {
	echo "${MXS_CACHE:-$MXS_TOP/build/cache}/sendmail"
}

# Missing shared libraries of BINARY (one soname a line); LD_LIBRARY_PATH as given.
_sm_missing_libs() {
	ldd "$1" 2>/dev/null | awk '/not found/ { print $1 }'
}

# Fetch PACKAGES into the cache unless a .deb of each is there.  1 when a download fails.
_sm_fetch() {
	local cache=$1 p missing=()
	shift
	for p in "$@"; do
		compgen -G "$cache/${p}_*.deb" >/dev/null || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "# sendmail.sh: apt-get download ${missing[*]} into $cache" >&2
	local tmp
	tmp=$(mktemp -d "$cache/.dl.XXXXXX") || return 1
	# Sandbox user root: the cache may not be readable by _apt.
	if (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "${missing[@]}") >&2; then
		mv "$tmp"/*.deb "$cache/" && rm -rf "$tmp"
		return 0
	fi
	rm -rf "$tmp"
	return 1
}

# Make $cache/root hold unpacked sendmail-bin + sendmail-cf (and the libraries the system
# lacks).  Sets _SM_ROOT and _SM_LDPATH.  Skips the script when Sendmail cannot be had.
_sm_unpack() {
	local cache root deb bin libs
	cache=$(_sm_cache)
	mkdir -p "$cache" || skip "cannot create the cache directory $cache"
	root="$cache/root"
	bin="$root/usr/libexec/sendmail/sendmail"
	exec {_sm_lockfd}>"$cache/.lock"
	flock "$_sm_lockfd" # one test at a time fetches and unpacks
	if [ ! -e "$root/.complete" ]; then
		_sm_fetch "$cache" sendmail-bin sendmail-cf || {
			flock -u "$_sm_lockfd"
			skip "Sendmail not available: no .debs in $cache and 'apt-get download sendmail-bin sendmail-cf' failed"
		}
		rm -rf "$root"
		mkdir -p "$root"
		for deb in "$cache"/sendmail-bin_*.deb "$cache"/sendmail-cf_*.deb; do
			dpkg-deb -x "$deb" "$root" || {
				flock -u "$_sm_lockfd"
				echo "start_sendmail: dpkg-deb -x $deb failed" >&2
				return 1
			}
		done
		# The binary is setgid mail: with that bit, exec would be "secure" and ignore
		# LD_LIBRARY_PATH; we run it as root anyway.
		chmod g-s "$bin"
		# Only the binaries, the cf tree and the helpfile are used (init.d/ once confused
		# the Makefile's search for *.d dependency files under build/).
		rm -rf "$root/etc/init.d" "$root/etc/cron.daily" "$root/usr/share/doc" \
			"$root/usr/share/man" "$root/usr/share/lintian" "$root/usr/share/bug"
		touch "$root/.complete"
	fi
	_SM_LDPATH="$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu"
	libs=$(LD_LIBRARY_PATH=$_SM_LDPATH _sm_missing_libs "$bin")
	if [ -n "$libs" ]; then
		# Libraries that a system with the sendmail package would have (libwrap0,
		# liblockfile1): fetch and unpack them beside it rather than skip.
		# shellcheck disable=SC2086 # a list of package names
		if _sm_fetch "$cache" $_SM_LIBPKGS; then
			for deb in $_SM_LIBPKGS; do
				dpkg-deb -x "$(compgen -G "$cache/${deb}_*.deb" | head -n 1)" "$root"
			done
		fi
		libs=$(LD_LIBRARY_PATH=$_SM_LDPATH _sm_missing_libs "$bin")
	fi
	flock -u "$_sm_lockfd"
	exec {_sm_lockfd}>&-
	[ -z "$libs" ] || skip "Sendmail needs libraries that are missing: $libs (apt-get install $_SM_LIBPKGS)"
	_SM_ROOT=$root
}

_sm_need() {
	need_cmd unshare nsenter swaks m4 dpkg-deb apt-get flock ldd
	[ "$(id -u)" = 0 ] || skip "Sendmail as a daemon needs root"
	unshare -m -u -p --fork --mount-proc true 2>/dev/null ||
		skip "cannot create mount, UTS and PID namespaces (unshare failed)"
}

_sm_mc() { # dir port milter-socket, extra lines...
	local d=$1 port=$2 milter=$3 line
	shift 3
	{
		cat <<EOF
divert(-1)
# Written by tests/lib/sendmail.sh for one test instance.  Every path is under $d.
divert(0)dnl
VERSIONID(\`mxsane test harness')dnl
dnl All of /etc/mail (helpfile, service.switch, aliases, ...) is replaced by this directory.
define(\`MAIL_SETTINGS_DIR', \`$d/etc/')dnl
dnl linux.m4 makes procmail the local mailer; /bin/true discards, should anything be delivered.
define(\`PROCMAIL_MAILER_PATH', \`/bin/true')dnl
OSTYPE(\`linux')dnl
define(\`QUEUE_DIR', \`$d/queue')dnl
define(\`STATUS_FILE', \`$d/statistics')dnl
define(\`ALIAS_FILE', \`$d/etc/aliases')dnl
define(\`HELP_FILE', \`$d/etc/helpfile')dnl
define(\`confPID_FILE', \`$d/sendmail.pid')dnl
define(\`confCONTROL_SOCKET_NAME', \`$d/control')dnl
define(\`confDEAD_LETTER_DROP', \`$d/dead.letter')dnl
define(\`confHOST_STATUS_DIRECTORY', \`$d/hoststat')dnl
define(\`confSERVICE_SWITCH_FILE', \`$d/etc/service.switch')dnl
define(\`confHOSTS_FILE', \`$d/etc/hosts')dnl
define(\`confFORWARD_PATH', \`')dnl
define(\`confDOMAIN_NAME', \`mta.mxs-harness.test')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confDELIVERY_MODE', \`queueonly')dnl
define(\`confLOG_LEVEL', \`9')dnl
define(\`confMILTER_LOG_LEVEL', \`9')dnl
define(\`confREFUSE_LA', \`0')dnl
define(\`confQUEUE_LA', \`0')dnl
define(\`confMAX_DAEMON_CHILDREN', \`0')dnl
define(\`confCONNECTION_RATE_THROTTLE', \`0')dnl
define(\`confBAD_RCPT_THROTTLE', \`0')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
FEATURE(\`promiscuous_relay')dnl
DAEMON_OPTIONS(\`Port=$port, Addr=127.0.0.1, Name=MTA')dnl
EOF
		if [ -n "$milter" ]; then
			echo "INPUT_MAIL_FILTER(\`mxsane', \`S=$milter, F=T, T=C:10s;S:10s;R:10s;E:30s')dnl"
		fi
		for line in "$@"; do
			printf '%s\n' "$line"
		done
		echo "MAILER(\`local')dnl"
		echo "MAILER(\`smtp')dnl"
	} >"$d/sendmail.mc"
}

_sm_layout() { # dir
	local d=$1
	mkdir -p "$d/etc" "$d/queue" "$d/hoststat"
	chmod 700 "$d/queue"
	cp "$_SM_ROOT/etc/mail/helpfile" "$d/etc/helpfile"
	# Sendmail's own lookups: files only (no DNS at all), and a hosts file of ours.
	printf 'hosts\tfiles\naliases\tfiles\n' >"$d/etc/service.switch"
	printf '127.0.0.1\tmta.mxs-harness.test mta localhost\n::1\tlocalhost\n' >"$d/etc/hosts"
	# What libc sees inside the namespace (gethostbyname of our own name at start-up): the
	# same hosts file, nsswitch "files" only, a resolver pointing at 127.0.0.1 only.
	_mta_ns_files "$d/ns"
	: >"$d/etc/aliases"
	: >"$d/statistics"
	touch "$d/etc/local-host-names" "$d/etc/trusted-users"
}

# Run CMD in new mount, UTS and PID namespaces: our hosts, resolv.conf and nsswitch.conf
# bound over the host's (libc lookups stay on files and loopback: Sendmail resolves its own
# name at start-up), hostname mta.mxs-harness.test, and CMD as PID 1: when it exits, the kernel
# kills every process left in the namespace.  Every run of the Sendmail binary goes through
# here, never on the host as it is.  Run in the background or in a pipeline: then the subshell
# becomes unshare itself (exec), so that $! is the unshare process.
_sm_ns() { # dir cmd...
	local d=$1 ex=exec
	shift
	[ "$BASHPID" = "$$" ] && ex= # in the script's own shell: no exec
	$ex unshare -m -u -p --fork --mount-proc --kill-child --propagation private \
		/bin/sh -ec '
			d=$1 ldpath=$2
			shift 2
			for f in hosts resolv.conf nsswitch.conf; do
				src="$d/ns/$f"
				[ "$f" = hosts ] && src="$d/etc/hosts"
				mount -n --bind "$src" "/etc/$f" ||
					echo "sendmail.sh: warning: could not bind over /etc/$f" >&2
			done
			hostname mta.mxs-harness.test
			export LD_LIBRARY_PATH="$ldpath"
			exec "$@"' sh "$d" "$_SM_LDPATH" "$@"
}

# Is something listening on 127.0.0.1:PORT (TCP), and when PID is given, is it that process?
# Reads /proc/net/tcp: no connection is made, so the milter does not see a probe session.
# grep/awk, not a bash read loop: the file can hold thousands of sockets while other tests run,
# and bash reads /proc files byte by byte.  (A Sendmail that cannot bind keeps retrying, alive:
# the listener must be checked to be its own.)
_sm_listening() { # port [pid]
	local hex inode
	printf -v hex '%04X' "$1"
	inode=$(awk -v a="0100007F:$hex" '$2 == a && $3 == "00000000:0000" && $4 == "0A" {
		print $10; exit }' /proc/net/tcp)
	[ -n "$inode" ] || return 1
	[ $# -lt 2 ] && return 0
	find "/proc/$2/fd" -lname "socket:\[$inode\]" 2>/dev/null | grep -q .
}

start_sendmail() {
	local milter=${1-}
	shift || true
	_sm_need
	_sm_unpack || return 1
	local d="$T_DIR/sendmail" attempt port up init pid deadline cfdir="$_SM_ROOT/usr/share/sendmail/cf"
	[ -n "$_SM_UNSHARE_PID" ] && stop_sendmail
	for attempt in 1 2 3; do
		rm -rf "$d"
		mkdir -p "$d"
		_sm_layout "$d"
		port=$(free_port) || return 1
		_sm_mc "$d" "$port" "$milter" "$@"
		if ! m4 -D_CF_DIR_="$cfdir/" "$cfdir/m4/cf.m4" "$d/sendmail.mc" >"$d/sendmail.cf" 2>"$d/m4.err"; then
			echo "start_sendmail: m4 failed:" >&2
			cat "$d/m4.err" >&2
			return 1
		fi
		# -bD: daemon in the foreground.  -X: SMTP traffic log (Sendmail's own log goes
		# to syslog, absent here).  timeout(1), PID 1 of the namespace, forwards our
		# SIGTERM to sendmail and ends it after SENDMAIL_LIFETIME seconds (default 1800;
		# a safety net should this script be killed before its EXIT trap runs).
		_sm_ns "$d" timeout -k 5 "${SENDMAIL_LIFETIME:-1800}" \
			"$_SM_ROOT/usr/libexec/sendmail/sendmail" -bD -C "$d/sendmail.cf" \
			-L sm-mta-test -X "$d/traffic.log" ${SENDMAIL_DEBUG:+"-d$SENDMAIL_DEBUG"} \
			</dev/null >>"$d/sendmail.out" 2>&1 &
		up=$!
		track_pid "$up"
		_SM_UNSHARE_PID=$up
		init=
		pid=
		deadline=$((EPOCHSECONDS + 10))
		while [ "$EPOCHSECONDS" -le "$deadline" ]; do
			[ -n "$init" ] || _pf_child_of "$up" init
			# Re-read each time: before timeout(1) runs, the child is mount or hostname.
			[ -n "$init" ] && _pf_child_of "$init" pid
			[ -n "$pid" ] && _sm_listening "$port" "$pid" && break
			kill -0 "$up" 2>/dev/null || break
			# A daemon that cannot bind stays alive and retries: give up on it now.
			[ -s "$d/sendmail.out" ] && grep -q 'cannot bind' "$d/sendmail.out" && break
			sleep 0.05
		done
		if [ -n "$pid" ] && kill -0 "$up" 2>/dev/null && _sm_listening "$port" "$pid"; then
			SENDMAIL_PORT=$port
			SENDMAIL_PID=$pid
			SENDMAIL_DIR=$d
			SENDMAIL_CF=$d/sendmail.cf
			SENDMAIL_BIN=$_SM_ROOT/usr/libexec/sendmail/sendmail
			export SENDMAIL_PORT SENDMAIL_PID SENDMAIL_DIR SENDMAIL_CF SENDMAIL_BIN
			return 0
		fi
		echo "start_sendmail: attempt $attempt on port $port failed:" >&2
		stop_sendmail
		_sm_diagnose "$d" "$port" || return 1
	done
	return 1
}

# Why did the daemon not come up?  Returns 0 when the port was taken (worth a retry).
_sm_diagnose() { # dir port
	local d=$1
	cat "$d/sendmail.out" >&2 2>/dev/null
	if _sm_listening "$2"; then
		echo "start_sendmail: port $2 was taken by another process" >&2
		return 0
	fi
	# Test mode reads the whole configuration and reports its errors on stdout.
	echo "start_sendmail: the daemon exited early; sendmail -bt says:" >&2
	_sm_ns "$d" timeout 10 "$_SM_ROOT/usr/libexec/sendmail/sendmail" -C "$d/sendmail.cf" \
		-bt </dev/null 2>&1 | head -n 20 >&2
	return 1
}

# timeout(1), PID 1 of the namespace, passes SIGTERM to sendmail, whose handler stops its
# children; when it exits the kernel kills anything left in the namespace.  SIGKILL from
# outside the namespace always reaches its init (the fallback).
stop_sendmail() {
	local up=$_SM_UNSHARE_PID init i
	[ -n "$up" ] || return 0
	_SM_UNSHARE_PID=
	if _pf_child_of "$up" init; then
		kill -TERM "$init" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			kill -0 "$up" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$up" 2>/dev/null; then
			echo "# sendmail's namespace ($init) ignored SIGTERM for 5 s, killing it" >&2
			kill -KILL "$init" 2>/dev/null
		fi
	fi
	stop_pid "$up"
	return 0
}

sendmail_send() {
	SMTP_PORT=${SENDMAIL_PORT:?start_sendmail first} smtp_send "$@"
}

sendmail_queue() {
	local f
	for f in "${SENDMAIL_DIR:?start_sendmail first}"/queue/qf*; do
		[ -e "$f" ] && echo "${f##*/}"
	done
	return 0
}

sendmail_cmd() {
	[ -n "${SENDMAIL_DIR:-}" ] || { echo "sendmail_cmd: start_sendmail first" >&2; return 2; }
	_sm_ns "$SENDMAIL_DIR" "$SENDMAIL_BIN" "$@"
}

sendmail_msp_cf() {
	local d=${SENDMAIL_DIR:?start_sendmail first} cfdir="$_SM_ROOT/usr/share/sendmail/cf"
	# The MSP runs as RunAsUser (it refuses root): its queue and the directories above it
	# must be reachable by that user.
	install -d -o nobody -g nogroup -m 770 "$d/clientmqueue"
	chmod o+x "$d" "$T_DIR"
	cat >"$d/submit.mc" <<MC
divert(0)dnl
VERSIONID(\`mxsane test harness MSP')dnl
define(\`MAIL_SETTINGS_DIR', \`$d/etc/')dnl
OSTYPE(\`linux')dnl
define(\`MSP_QUEUE_DIR', \`$d/clientmqueue')dnl
define(\`STATUS_FILE', \`$d/clientmqueue/sm-client.st')dnl
define(\`confPID_FILE', \`$d/clientmqueue/sm-client.pid')dnl
define(\`confDEAD_LETTER_DROP', \`$d/dead.letter')dnl
define(\`confHOST_STATUS_DIRECTORY', \`$d/hoststat')dnl
define(\`confSERVICE_SWITCH_FILE', \`$d/etc/service.switch')dnl
define(\`confHOSTS_FILE', \`$d/etc/hosts')dnl
define(\`confDOMAIN_NAME', \`mta.mxs-harness.test')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confRUN_AS_USER', \`nobody:nogroup')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $SENDMAIL_PORT')dnl
FEATURE(\`msp', \`[127.0.0.1]')dnl
MC
	m4 -D_CF_DIR_="$cfdir/" "$cfdir/m4/cf.m4" "$d/submit.mc" >"$d/submit.cf" 2>"$d/m4-submit.err" ||
		{ cat "$d/m4-submit.err" >&2; return 1; }
	SENDMAIL_SUBMIT_CF=$d/submit.cf
	export SENDMAIL_SUBMIT_CF
}

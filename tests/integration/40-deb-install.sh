#!/usr/bin/env bash
# 40-deb-install.sh - the Debian package as an admin gets it: build it (`make deb`, or reuse a
# .deb newer than every source file), check it with lintian, install it with dpkg -i, start
# both daemons exactly as their systemd units would (ExecStartPre and ExecStart read from the
# installed unit files, run as the unit's User/Group, nothing substituted), configure an
# isolated Postfix with the main.cf lines the README gives, send mail through the milter and
# through the policy service (null-MX recipient refused, ok domain accepted), reload through
# the units' ExecReload lines, then `dpkg --purge mxsane` and check that everything postinst
# created is gone.
#
# It installs a package on this machine: root only, meant for CI's throwaway machine.  It
# skips when not root, when dpkg-buildpackage or debhelper is missing, when systemd runs
# (dpkg -i would start the milter unit), and when mxsane is already installed (it would purge
# somebody's installation).
#
# The daemons read /etc/mxsane/mxsane.conf, the package's conffile: the unit command lines
# name it, and they are run verbatim.  The test sets resolver.servers there to its knotd (what
# an admin edits too); the file goes away with the purge at the end (and in the EXIT trap when
# the test fails half-way), so nothing is left to restore.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
. "$MXS_TOP/tests/lib/postfix.sh"

# ---- The Postfix set-up of the README, read from the README itself so the two cannot drift:
# the indented block after the line naming this test in "Postfix (milter)" (the unix socket
# the Debian package uses) and in "Postfix (policy service)".  Each main.cf parameter, with
# its continuation lines, becomes one element.
readme_block() { # SECTION-HEADING
	awk -v sec="$1" '
		$0 == sec { insec = 1; next }
		insec && /^[A-Z].*/ && prev ~ /^-+$/ { exit }
		insec && /40-deb-install\.sh/ { armed = 1; prev = $0; next }
		armed && /^    [^ #]/ { inblock = 1 }
		inblock && /^$/ { exit }
		inblock { sub(/^    /, ""); print }
		{ prev = $0 }' "$MXS_TOP/README"
}
readme_params() { # SECTION-HEADING: print each parameter (joined with its continuations) NUL-terminated
	readme_block "$1" | awk '
		/^[a-z_]+ *=/ { if (cur != "") printf "%s%c", cur, 0; cur = $0; next }
		{ cur = cur "\n" $0 }
		END { if (cur != "") printf "%s%c", cur, 0 }'
}
mapfile -d '' README_MILTER < <(readme_params "Postfix (milter)")
mapfile -d '' README_POLICY < <(readme_params "Postfix (policy service)")
[ ${#README_MILTER[@]} -eq 3 ] || { not_ok "README: three milter lines found" "${README_MILTER[*]:-none}"; finish; }
[ ${#README_POLICY[@]} -eq 2 ] || { not_ok "README: two policy parameters found" "${README_POLICY[*]:-none}"; finish; }
# Not the README's: the test's SMTP client (127.0.0.1) stands for a host on the internet, so
# it must not be in mynetworks (the harness's default is 127.0.0.0/8), or permit_mynetworks
# would let it through before the policy service is asked.
INTERNET_CLIENT="mynetworks ="

[ "$(id -u)" = 0 ] || skip "installs a .deb on this machine: root only"
command -v dpkg-buildpackage >/dev/null || skip "dpkg-buildpackage not installed (dpkg-dev)"
command -v dh >/dev/null || skip "debhelper not installed"
need_cmd dpkg setpriv
[ -d /run/systemd/system ] &&
	skip "systemd is running: dpkg -i would start mxsane-milter.service; run this on a machine without systemd (CI)"
if dpkg-query -W -f='${Status}' mxsane 2>/dev/null | grep -q 'installed$'; then
	skip "mxsane is already installed on this machine; not replacing it (dpkg --purge mxsane first)"
fi
[ -x /usr/lib/postfix/sbin/master ] || skip "postfix not installed"
need_cmd swaks unshare nsenter mountpoint ps

VERSION=$(dpkg-parsechangelog -l "$MXS_TOP/packaging/debian/changelog" -S Version)
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
DEB="$MXS_TOP/build/deb/mxsane_${VERSION}_${ARCH}.deb"
UNITDIR=/lib/systemd/system
SOCKDIR=/var/spool/postfix/mxsane

# ---- build (or reuse) the package
newer_sources() { # the source files changed after the .deb was built
	(cd "$MXS_TOP" && git ls-files -co --exclude-standard 2>/dev/null |
		grep -v -E '^(build|build-[^/]*)/' | while IFS= read -r f; do
		[ "$f" -nt "$DEB" ] && echo "$f"
	done | head -n 3)
}
if [ -f "$DEB" ] && [ -z "$(newer_sources)" ]; then
	echo "# using $DEB (newer than every source file)"
else
	echo "# building $DEB (packaging/build-deb.sh, as make deb)"
	if ! LINTIAN=0 "$MXS_TOP/packaging/build-deb.sh"; then
		not_ok "the package builds" "packaging/build-deb.sh failed"
		finish
	fi
fi
[ -f "$DEB" ] || { not_ok "the package builds" "no $DEB"; finish; }
ok "package $DEB"

if command -v lintian >/dev/null; then
	if lintian --fail-on error,warning "$DEB" >"$T_DIR/lintian.out" 2>&1; then
		ok "lintian: no errors, no warnings"
	else
		not_ok "lintian: no errors, no warnings" "$(grep -v 'running with root' "$T_DIR/lintian.out")"
	fi
else
	echo "# lintian not installed: not checked"
fi

# ---- install.  From here on the EXIT trap purges the package again (stopping the daemons
# first: userdel refuses a user that still runs processes).
MILTER_PID= POLICY_PID= HOSTSOCK=
# dpkg ARGS...: dpkg, waiting (max 120 s) while another package manager on the machine holds
# its lock (an apt-get run elsewhere is not this test's failure)
dpkg_locked() {
	local out i
	for i in $(seq 120); do
		out=$(dpkg "$@" 2>&1) && { printf '%s\n' "$out"; return 0; }
		case $out in *"lock"*) sleep 1 ;; *) printf '%s\n' "$out"; return 1 ;; esac
	done
	printf '%s\n' "$out"
	return 1
}
purge_if_installed() {
	[ -n "$MILTER_PID" ] && stop_pid "$MILTER_PID"
	[ -n "$POLICY_PID" ] && stop_pid "$POLICY_PID"
	MILTER_PID= POLICY_PID=
	if [ -n "$HOSTSOCK" ] && mountpoint -q "$HOSTSOCK"; then
		umount "$HOSTSOCK" || umount -l "$HOSTSOCK"
	fi
	if dpkg-query -W -f='${Status}' mxsane 2>/dev/null | grep -q 'installed$'; then
		echo "# EXIT: dpkg --purge mxsane" >&2
		dpkg_locked --purge mxsane >&2
	fi
	return 0
}
at_cleanup purge_if_installed

SPOOL_EXISTED=0
[ -d /var/spool/postfix ] && SPOOL_EXISTED=1
if ! out=$(dpkg_locked -i "$DEB"); then
	not_ok "dpkg -i" "$out"
	finish
fi
ok "dpkg -i $(basename "$DEB")"

# what postinst and the package set up
assert_eq "system user mxsane" "mxsane" "$(id -un mxsane 2>&1)"
assert_eq "group mxsane" "mxsane" "$(id -gn mxsane 2>&1)"
assert_eq "user mxsane has no login shell" "/usr/sbin/nologin" "$(getent passwd mxsane | cut -d: -f7)"
assert_match "postfix is in group mxsane" "(^| )mxsane( |$)" "$(id -Gn postfix)"
assert_eq "$SOCKDIR: mxsane:mxsane 750" "mxsane:mxsane 750" "$(stat -c '%U:%G %a' "$SOCKDIR" 2>&1)"
assert_eq "/etc/mxsane/mxsane.conf and the example list files are the conffiles" \
	"/etc/mxsane/mxsane.conf /etc/mxsane/policy-allow-clients /etc/mxsane/recipient-policies /etc/mxsane/skip-clients /etc/mxsane/skip-domains" \
	"$(dpkg-query -W -f='${Conffiles}' mxsane | awk 'NF {print $1}' | sort | xargs)"
assert_eq "the example list files hold comments only" "" \
	"$(grep -hv '^#' /etc/mxsane/skip-domains /etc/mxsane/skip-clients /etc/mxsane/policy-allow-clients /etc/mxsane/recipient-policies)"
assert_eq "mxsane.conf does not name them (not read by default)" "" \
	"$(grep -E '^[[:space:]]*[a-z_]*_file[[:space:]]*=' /etc/mxsane/mxsane.conf)"
assert_match "packaged milter socket is inside Postfix's chroot" \
	'^[[:space:]]*socket = "unix:/var/spool/postfix/mxsane/milter.sock";' \
	"$(grep -E '^[[:space:]]*socket = ' /etc/mxsane/mxsane.conf)"
for f in /usr/sbin/mxsane-milter /usr/sbin/mxsane-policyd /usr/bin/mxsane-check /usr/bin/mxsane-report; do
	[ -x "$f" ] && ok "installed $f" || not_ok "installed $f" "missing"
done
for m in man1/mxsane-check.1 man1/mxsane-report.1 man5/mxsane.conf.5 man8/mxsane-milter.8 man8/mxsane-policyd.8; do
	[ -f "/usr/share/man/$m.gz" ] && ok "man page $m" || not_ok "man page $m" "not installed"
done
for u in mxsane-milter mxsane-policyd; do
	[ -f "$UNITDIR/$u.service" ] && ok "unit $u.service" || { not_ok "unit $u.service" "missing"; finish; }
done
[ -L /etc/systemd/system/multi-user.target.wants/mxsane-milter.service ] &&
	ok "mxsane-milter.service enabled" || not_ok "mxsane-milter.service enabled" "no symlink"

# ---- the units' command lines.  unit_get UNIT KEY: every value of KEY= (one per line).
unit_get() {
	sed -n "s/^$2=//p" "$UNITDIR/$1.service"
}
# run_as_unit UNIT CMDLINE...: run one command line of UNIT the way systemd would as far as
# it can be done without systemd: as User/Group (with their supplementary groups), no new
# privileges, no capabilities, umask 022, cwd /, stdin from /dev/null.  The sandbox options
# (ProtectSystem=..., PrivateTmp=...) need systemd and are not applied here.  It execs: call it
# in a subshell, or as the background job of start_bg (whose PID then is the daemon's).
run_as_unit() {
	local unit=$1 user group
	shift
	user=$(unit_get "$unit" User)
	group=$(unit_get "$unit" Group)
	cd / && umask 022 && exec setpriv --reuid="${user:-root}" --regid="${group:-root}" --init-groups \
		--no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"
}

# Before the test's change, the packaged configuration passes the units' own check.
for u in mxsane-milter mxsane-policyd; do
	pre=$(unit_get $u ExecStartPre)
	read -ra argv <<<"$pre"
	if out=$(run_as_unit $u "${argv[@]}" 2>&1 </dev/null); then
		ok "$u: the packaged configuration passes ExecStartPre ($pre)"
	else
		not_ok "$u: the packaged configuration passes ExecStartPre ($pre)" "$out"
	fi
done

# ---- DNS for the daemons: the test's knotd (tests/zones), set in the installed conffile.
start_knot || { not_ok "knotd starts" "see the log above"; finish; }
sed -i "s|^\([[:space:]]*\)servers = \[ \];|\1servers = [ \"127.0.0.1:$KNOT_PORT\" ];|" \
	/etc/mxsane/mxsane.conf
assert_eq "resolver.servers set to the test's knotd" "1" \
	"$(grep -c "servers = \[ \"127.0.0.1:$KNOT_PORT\" \];" /etc/mxsane/mxsane.conf)"

# start_unit UNIT NAME: ExecStartPre, then ExecStart in the background (log $T_DIR/NAME.log);
# sets BG_PID.
start_unit() {
	local unit=$1 name=$2 pre cmd argv out
	pre=$(unit_get "$unit" ExecStartPre)
	read -ra argv <<<"$pre"
	if ! out=$(run_as_unit "$unit" "${argv[@]}" 2>&1 </dev/null); then
		not_ok "$unit: ExecStartPre" "$out"
		return 1
	fi
	cmd=$(unit_get "$unit" ExecStart)
	[ "$(printf '%s\n' "$cmd" | wc -l)" = 1 ] || { not_ok "$unit: one ExecStart" "$cmd"; return 1; }
	read -ra argv <<<"$cmd"
	echo "# $unit: $cmd (as $(unit_get "$unit" User):$(unit_get "$unit" Group))"
	start_bg "$name" run_as_unit "$unit" "${argv[@]}"
}

wait_socket() { # PATH PID
	local i
	for i in $(seq 100); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

start_unit mxsane-milter milter || finish
MILTER_PID=$BG_PID
if wait_socket "$SOCKDIR/milter.sock" "$MILTER_PID"; then
	ok "mxsane-milter listens on $SOCKDIR/milter.sock"
else
	not_ok "mxsane-milter starts" "$(cat "$T_DIR/milter.log")"
	finish
fi
assert_eq "milter socket: mxsane:mxsane 660" "mxsane:mxsane 660" \
	"$(stat -c '%U:%G %a' "$SOCKDIR/milter.sock")"
assert_eq "mxsane-milter runs as mxsane" "mxsane mxsane-milter" "$(ps -o user=,comm= -p "$MILTER_PID" | xargs)"

_t_listening 10045 tcp && { not_ok "port 10045 is free for mxsane-policyd" "something listens"; finish; }
start_unit mxsane-policyd policyd || finish
POLICY_PID=$BG_PID
if wait_port 10045; then
	ok "mxsane-policyd listens on 127.0.0.1:10045"
else
	not_ok "mxsane-policyd starts" "$(cat "$T_DIR/policyd.log")"
	finish
fi

# ---- Postfix with the README's milter lines.  The isolated instance has a spool of its own
# in place of /var/spool/postfix, so the host's socket directory is bind-mounted into it at
# the same relative path (mxsane/): smtpd (uid postfix, supplementary groups from initgroups)
# reaches it through the real directory, with its real owner and mode.  The bind from the
# host comes first, under $T_DIR, so that the instance's mount namespace inherits it.
HOSTSOCK="$T_DIR/host-mxsane"
mkdir "$HOSTSOCK" && mount --bind "$SOCKDIR" "$HOSTSOCK" ||
	{ not_ok "bind mount of $SOCKDIR" "mount failed"; finish; }

send() { # FROM TO...: sets TR
	TR=$(smtp_send "$@")
}
reply() { # STAGE [ADDR]
	smtp_reply "$TR" "$@" || echo "<no $* reply in the transcript>"
}

start_postfix "${README_MILTER[@]}" || { not_ok "postfix starts (milter)" "see above"; finish; }
mkdir "$POSTFIX_DIR/spool/mxsane" &&
	postfix_exec mount --bind "$HOSTSOCK" /var/spool/postfix/mxsane ||
	{ not_ok "socket directory in the instance's spool" "mount failed"; finish; }
ok "postfix: $(printf '%s; ' "${README_MILTER[@]}")"

send s@ok-mx.mxs.test bob@null-mx.mxs.test
assert_match "milter: null-MX recipient refused with 556 5.1.10" \
	"^556 5\.1\.10 <bob@null-mx\.mxs\.test>: null-mx\.mxs\.test does not accept mail" \
	"$(reply RCPT bob@null-mx.mxs.test)"
send s@ok-mx.mxs.test alice@ok-mx.mxs.test
assert_match "milter: ok domain accepted" "^250 " "$(reply DATA)"
assert_match "milter: decision logged" \
	"verdict=null_mx .*domain=null-mx\.mxs\.test" "$(grep -m1 'verdict=null_mx' "$T_DIR/milter.log")"
if grep -q 'milter.*unix:mxsane/milter.sock.*\(Permission denied\|No such file\)' "$POSTFIX_LOG"; then
	not_ok "smtpd reaches the milter socket" "$(grep -m1 'milter' "$POSTFIX_LOG")"
else
	ok "smtpd reaches the milter socket (no connect error in the mail log)"
fi

# ExecReload as systemctl reload would run it ($MAINPID is the one systemd variable used)
for u in mxsane-milter:$MILTER_PID mxsane-policyd:$POLICY_PID; do
	unit=${u%%:*} pid=${u#*:}
	rc=0
	while IFS= read -r line; do
		line=${line//\$MAINPID/$pid}
		read -ra argv <<<"$line"
		(run_as_unit "$unit" "${argv[@]}") </dev/null >>"$T_DIR/reload.log" 2>&1 || rc=$?
	done < <(unit_get "$unit" ExecReload)
	sleep 0.5
	assert_eq "$unit: ExecReload lines succeed" "0" "$rc"
	kill -0 "$pid" 2>/dev/null && ok "$unit still runs after reload" ||
		not_ok "$unit still runs after reload" "$(tail -n 5 "$T_DIR/${unit#mxsane-}.log")"
done
send s@ok-mx.mxs.test bob@null-mx.mxs.test
assert_match "milter after reload: 556 5.1.10" "^556 5\.1\.10 " "$(reply RCPT bob@null-mx.mxs.test)"

# ---- Postfix with the README's policy service lines (no milter)
start_postfix "${README_POLICY[@]}" "$INTERNET_CLIENT" ||
	{ not_ok "postfix starts (policy)" "see above"; finish; }
assert_eq "postfix: the README's smtpd_recipient_restrictions" \
	"permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, check_policy_service inet:127.0.0.1:10045" \
	"$(postfix_exec postconf -h smtpd_recipient_restrictions)"
send s@ok-mx.mxs.test bob@null-mx.mxs.test
# Postfix rewrites X.1.10 from a policy to X.1.0 in recipient context (smtpd_dsn_fix.c)
assert_match "policy: null-MX recipient refused with 556 (5.1.0 after Postfix's DSN fix)" \
	"^556 5\.1\.0 .*null-mx\.mxs\.test does not accept mail" "$(reply RCPT bob@null-mx.mxs.test)"
send s@ok-mx.mxs.test alice@ok-mx.mxs.test
assert_match "policy: ok domain accepted" "^250 " "$(reply DATA)"
assert_match "policy: decision logged" \
	"verdict=null_mx .*domain=null-mx\.mxs\.test" "$(grep -m1 'verdict=null_mx' "$T_DIR/policyd.log")"
stop_postfix

# ---- stop (SIGTERM, as systemctl stop) and purge
stop_pid "$MILTER_PID"
MILTER_PID=
[ -e "$SOCKDIR/milter.sock" ] && not_ok "milter removes its socket on SIGTERM" "still there" ||
	ok "milter removes its socket on SIGTERM"
stop_pid "$POLICY_PID"
POLICY_PID=
umount "$HOSTSOCK" && rmdir "$HOSTSOCK"
HOSTSOCK=

if out=$(dpkg_locked --purge mxsane); then ok "dpkg --purge mxsane"; else not_ok "dpkg --purge mxsane" "$out"; fi
assert_eq "package gone" "not-installed" \
	"$(dpkg-query -W -f='${db:Status-Status}' mxsane 2>/dev/null || echo not-installed)"
getent passwd mxsane >/dev/null && not_ok "user mxsane removed" "still there" || ok "user mxsane removed"
getent group mxsane >/dev/null && not_ok "group mxsane removed" "still there" || ok "group mxsane removed"
assert_eq "postfix's groups back to its own" "$(id -gn postfix)" "$(id -Gn postfix)"
for p in "$SOCKDIR" /etc/mxsane /run/mxsane "$UNITDIR/mxsane-milter.service" \
	"$UNITDIR/mxsane-policyd.service" /etc/systemd/system/multi-user.target.wants/mxsane-milter.service \
	/usr/sbin/mxsane-milter /usr/sbin/mxsane-policyd /usr/bin/mxsane-check /usr/bin/mxsane-report; do
	[ -e "$p" ] || [ -L "$p" ] && not_ok "purge removed $p" "still there" || ok "purge removed $p"
done
if [ "$SPOOL_EXISTED" = 1 ]; then
	[ -d /var/spool/postfix ] && ok "/var/spool/postfix (Postfix's) kept" ||
		not_ok "/var/spool/postfix kept" "removed"
fi

finish

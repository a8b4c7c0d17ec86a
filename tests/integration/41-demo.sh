#!/usr/bin/env bash
# 41-demo.sh - `make demo`, the README's first command, does what it promises: it prints a row
# (domain, role, verdict, the SMTP client's reply, mxsane's log line) for one message from and
# one to each sample domain, with the expected verdict and reply (556 5.1.10 for mail to the
# null-MX domain, ...), stops everything it started, removes its temporary directory, and
# leaves the host's /etc/postfix byte-identical (checked here too, independently).
# Runs with DEMO_NO_INSTALL=1: a test never installs packages; it skips when the demo's
# software is missing, and when not root (the demo needs root).
. "$(dirname "$0")/../lib/common.sh"

[ "$(id -u)" = 0 ] || skip "make demo needs root"
need_cmd make knotd kdig swaks
"$PY" -c 'import dnslib' 2>/dev/null || skip "python3-dnslib not installed"
[ -x /usr/lib/postfix/sbin/master ] || skip "postfix not installed"
need_cmd unshare nsenter ps

etc_state() {
	(cd /etc/postfix && find . -printf '%p %y %u:%g %m %l\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) 2>&1
}
ETC_BEFORE=$(etc_state)

OUT="$T_DIR/demo.out"
DEMO_NO_INSTALL=1 make -s -C "$MXS_TOP" demo >"$OUT" 2>&1
rc=$?
cat "$OUT"
echo "# ---- end of make demo output"
assert_eq "make demo exits 0" 0 "$rc"

# row DOMAIN ROLE VERDICT REPLY-ERE: the table row and the log line under it
row() {
	local dom=$1 role=$2 verdict=$3 re=$4 line log
	line=$(grep -E "^${dom//./\\.} +$role +" "$OUT" | head -n 1)
	if [ -z "$line" ]; then
		not_ok "row $dom $role" "missing from the table"
		return
	fi
	assert_match "row $dom $role: verdict $verdict" "^[^ ]+ +[^ ]+ +$verdict " "$line"
	assert_match "row $dom $role: reply /$re/" "^[^ ]+ +[^ ]+ +[^ ]+ +$re" "$line"
	log=$(grep -A1 -F -- "$line" "$OUT" | sed -n '2p')
	assert_match "row $dom $role: log line" \
		"^    log: verdict=$verdict .*role=$role domain=${dom//./\\.}( |$)" "$log"
}
row ok.demo.test sender ok "250 2\.0\.0 Ok: queued as"
row ok.demo.test recipient ok "250 2\.0\.0 Ok: queued as"
row null-mx.demo.test sender null_mx "550 5\.7\.27 <demo@null-mx\.demo\.test>: null-mx\.demo\.test does not accept mail \(null MX\)"
row null-mx.demo.test recipient null_mx "556 5\.1\.10 <bob@null-mx\.demo\.test>: null-mx\.demo\.test does not accept mail \(null MX\)"
row nonexistent.demo.test sender nxdomain "550 5\.1\.8 "
row nonexistent.demo.test recipient nxdomain "550 5\.1\.2 "
row no-mail-host.demo.test sender no_mail_host "550 5\.1\.8 "
row no-mail-host.demo.test recipient no_mail_host "550 5\.1\.2 "
row broken-mx.demo.test sender broken_mx "450 4\.1\.8 "
row broken-mx.demo.test recipient broken_mx "450 4\.4\.4 "
row mx-cname.demo.test sender mx_cname "250 2\.0\.0 Ok: queued as"
row mx-cname.demo.test recipient mx_cname "250 2\.0\.0 Ok: queued as"
row servfail.fault.test sender dns_error "451 4\.4\.3 "
row servfail.fault.test recipient dns_error "451 4\.4\.3 "
assert_eq "14 rows in the table" 14 "$(grep -c -E '^[a-z0-9.-]+\.test +(sender|recipient) ' "$OUT")"
assert_eq "no row flagged UNEXPECTED" 0 "$(grep -c UNEXPECTED "$OUT")"

# it stopped and removed what it started, and says so
assert_match "reports that it stopped everything" "^stopped: " "$(grep '^stopped:' "$OUT")"
assert_match "reports /etc/postfix unchanged" "byte-identical" "$(grep "^host's /etc/postfix" "$OUT")"
tmp=$(sed -n 's/^.*temporary directory \(.*\) removed$/\1/p' "$OUT")
if [ -n "$tmp" ] && [ ! -e "$tmp" ]; then
	ok "temporary directory $tmp removed"
else
	not_ok "temporary directory removed" "'$tmp'"
fi
# Every process the demo starts (knotd, faultdns, the milter, Postfix's master and its
# children) has its output in a file of the demo's temporary directory: none may still hold
# one open.  (Other processes on the machine are none of this test's business.)
left=
if [ -n "$tmp" ]; then
	for p in $(find /proc/[0-9]*/fd -maxdepth 1 -lname "$tmp/*" 2>/dev/null | cut -d/ -f3 | sort -u); do
		left="$left $p($(ps -o comm= -p "$p"))"
	done
fi
assert_eq "no process of the demo left" "" "$left"
assert_eq "the host's /etc/postfix is byte-identical (checked by the test)" "$ETC_BEFORE" "$(etc_state)"

finish

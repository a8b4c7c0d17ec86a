#!/usr/bin/env bash
# 70-report.sh - mxsane-report on decision lines written by a real mxsane-policyd (spawn mode,
# -f, against knotd), in every form they reach a disk: the bare lines, behind Debian 12
# rsyslog's RFC 3339 prefix, a traditional syslog prefix, journalctl -o short-iso and
# -o json, gzip-compressed, key=value and JSON records.  Every form gives the same counts;
# sender verdicts count once per message (the policy service marks the sender line of each
# further recipient repeat=yes); --since/--until, --domain, --client, --csv, --json, the
# text tables; bad input (cut lines, binary, a 10 MiB line) is skipped and counted.
# The prefixed forms are written here from the daemon's real lines, in the formats rsyslog,
# syslog and journalctl write (no journald runs on the test machine); 71 reads a mail.log
# that a real rsyslog wrote, 72 opens --html in Chromium.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-policyd
need_bin mxsane-report
POLICYD="$BUILD_DIR/mxsane-policyd"
REPORT="$BUILD_DIR/mxsane-report"
start_knot || { not_ok "knotd starts" "see the log above"; finish; }
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)

# policy requests: one per RCPT, Postfix's attributes; MSG = instance
req() { # instance client sender recipient
	printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n'
	printf 'client_address=%s\nclient_name=unknown\nhelo_name=h.example\n' "$2"
	printf 'sender=%s\nrecipient=%s\ninstance=%s\n\n' "$3" "$4" "$1"
}
run_policyd() { # conf log < requests
	"$POLICYD" -s -f -c "$1" "${USER_ARGS[@]}" >"$T_DIR/replies" 2>"$2"
}

cat >"$T_DIR/enforce.conf" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 3000; };
EOF
{
	# message 1: null-MX sender, three recipients: one sender line, two repeats
	req i1.1 192.0.2.10 a@null-mx.mxs.test r1@ok-mx.mxs.test
	req i1.1 192.0.2.10 a@null-mx.mxs.test r2@ok-mx.mxs.test
	req i1.1 192.0.2.10 a@null-mx.mxs.test r3@ok-mx.mxs.test
	# message 2: nonexistent sender domain, two recipients
	req i2.1 192.0.2.10 b@nonexistent.mxs.test r1@ok-mx.mxs.test
	req i2.1 192.0.2.10 b@nonexistent.mxs.test r2@ok-mx.mxs.test
	# message 3: good sender, a null-MX and a good recipient
	req i3.1 192.0.2.11 c@ok-mx.mxs.test x@null-mx.mxs.test
	req i3.1 192.0.2.11 c@ok-mx.mxs.test y@ok-mx.mxs.test
	# message 4: null-MX sender again, from another client
	req i4.1 192.0.2.11 d@null-mx.mxs.test r1@ok-mx.mxs.test
} | run_policyd "$T_DIR/enforce.conf" "$T_DIR/enforce.err"
grep 'verdict=' "$T_DIR/enforce.err" >"$T_DIR/bare.log"
assert_eq "the policy service logged 10 decision lines" 10 "$(wc -l <"$T_DIR/bare.log")"
assert_eq "4 of them repeat a sender verdict of the same message" 4 \
	"$(grep -c ' role=sender repeat=yes ' "$T_DIR/bare.log")"
assert_eq "the repeats follow the first sender line of each message" \
	"sender sender+ sender+ sender sender+ sender recipient sender+ recipient sender" \
	"$(sed -E 's/.* role=([a-z]+)( repeat=yes)?.*/\1\2/; s/ repeat=yes/+/' "$T_DIR/bare.log" | tr '\n' ' ' | sed 's/ $//')"

# the same lines in the other forms; line i at 2026-12-04 10:00 UTC + 20 i minutes
"$PY" - "$T_DIR" <<'EOF'
import gzip, json, os, sys, time
d = sys.argv[1]
lines = [l.rstrip("\n") for l in open(os.path.join(d, "bare.log"))]
base = 1796378400  # 2026-12-04T10:00:00Z
forms = {k: [] for k in ("rsyslog", "traditional", "shortiso", "journal")}
for i, l in enumerate(lines):
    tag, msg = l.split(": ", 1)
    t = base + 1200 * i
    tm = time.gmtime(t)
    forms["rsyslog"].append(time.strftime("%Y-%m-%dT%H:%M:%S", tm) + ".%06d+00:00 mx1 %s: %s" % (i, tag, msg))
    # the same instant written in another zone (UTC+01:00) by journalctl -o short-iso
    tl = time.gmtime(t + 3600)
    forms["shortiso"].append(time.strftime("%Y-%m-%dT%H:%M:%S", tl) + "+0100 mx1 %s: %s" % (tag, msg))
    forms["traditional"].append(time.strftime("%b %e %H:%M:%S", tm) + " mx1 %s: %s" % (tag, msg))
    forms["journal"].append(json.dumps({"__CURSOR": "s=0;i=%x" % i, "__REALTIME_TIMESTAMP": str(t * 1000000),
        "_HOSTNAME": "mx1", "SYSLOG_IDENTIFIER": "mxsane-policyd", "_PID": "42", "PRIORITY": "4",
        "MESSAGE": msg, "_BOOT_ID": "0"}))
    # other programs' lines in between
    forms["rsyslog"].append(time.strftime("%Y-%m-%dT%H:%M:%S", tm) + ".5+00:00 mx1 postfix/smtpd[7]: connect from unknown[192.0.2.10]")
    forms["journal"].append(json.dumps({"__REALTIME_TIMESTAMP": str(t * 1000000), "SYSLOG_IDENTIFIER": "postfix/smtpd", "MESSAGE": "disconnect"}))
for k, v in forms.items():
    open(os.path.join(d, k + ".log"), "w").write("\n".join(v) + "\n")
with gzip.open(os.path.join(d, "rsyslog.log.2.gz"), "wt") as f:
    f.write("\n".join(forms["rsyslog"]) + "\n")
EOF

# check_tables NAME JSON: the counts every form must give
check_tables() {
	local name=$1 json=$2 got
	got=$(printf '%s' "$json" | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
v = sorted("%s/%s/%s/%s=%d" % (x["role"], x["verdict"], x["action"], x["would"], x["count"]) for x in r["verdicts"])
s = ["%s:%s:%d:%d" % (x["domain"], x["verdicts"], x["refused"], x["would_refuse"]) for x in r["senders"]]
c = ["%s:%d:%d:%s" % (x["client_addr"], x["messages"], x["refused"], x["domains"]) for x in r["clients"]]
print(" ".join(v)); print(" ".join(s)); print(" ".join(c))
print("decisions=%d repeats=%d" % (r["input"]["decisions"], r["input"]["repeated_sender_lines"]))')
	assert_eq "$name: counts by role, verdict and action" \
		"recipient/null_mx/reject/=1 recipient/ok/accept/=1 sender/null_mx/reject/=2 sender/nxdomain/reject/=1 sender/ok/accept/=1" \
		"$(sed -n 1p <<<"$got")"
	assert_eq "$name: refused sender domains per message, not per recipient" \
		"null-mx.mxs.test:null_mx:2:0 nonexistent.mxs.test:nxdomain:1:0" "$(sed -n 2p <<<"$got")"
	assert_eq "$name: clients sending from null-MX or nonexistent domains, with the domains" \
		"192.0.2.10:2:2:null-mx.mxs.test (1), nonexistent.mxs.test (1) 192.0.2.11:1:1:null-mx.mxs.test (1)" \
		"$(sed -n 3p <<<"$got")"
	assert_eq "$name: decisions and repeated sender lines" "decisions=6 repeats=4" "$(sed -n 4p <<<"$got")"
}
hours_of() { # json -> "HOUR=TOTAL ..."
	"$PY" -c 'import json, sys; r = json.load(sys.stdin); print(" ".join("%s=%d" % (h["hour"], h["total"]) for h in r["hours"]))'
}
HOURS="2026-12-04T10:00Z=1 2026-12-04T11:00Z=2 2026-12-04T12:00Z=2 2026-12-04T13:00Z=1"

for form in bare rsyslog traditional shortiso journal rsyslog.log.2.gz; do
	f="$T_DIR/$form"
	[ -e "$f" ] || f="$T_DIR/$form.log"
	out=$(TZ=UTC "$REPORT" --json "$f" 2>"$T_DIR/report.err")
	rc=$?
	assert_eq "$form: exit 0, nothing on stderr" "0:" "$rc:$(cat "$T_DIR/report.err")"
	check_tables "$form" "$out"
	if [ "$form" != bare ]; then
		assert_eq "$form: decisions per hour (UTC)" "$HOURS" "$(hours_of <<<"$out")"
	fi
done
out=$(TZ=UTC "$REPORT" --json "$T_DIR/rsyslog.log")
assert_eq "other programs' lines are counted as other, not bad" "10 0" \
	"$(json_get "$out" input.other_lines) $(json_get "$out" input.bad_lines)"
# traditional syslog timestamps are local time
out=$(TZ=Europe/Berlin "$REPORT" --json "$T_DIR/traditional.log")
assert_eq "traditional prefix in TZ=Europe/Berlin: one hour earlier in UTC" \
	"2026-12-04T09:00Z=1 2026-12-04T10:00Z=2 2026-12-04T11:00Z=2 2026-12-04T12:00Z=1" "$(hours_of <<<"$out")"
# stdin, and several files at once
out=$("$REPORT" --json <"$T_DIR/rsyslog.log")
assert_eq "stdin: the same decisions" 6 "$(json_get "$out" input.decisions)"
out=$("$REPORT" --json "$T_DIR/rsyslog.log" "$T_DIR/rsyslog.log.2.gz" -)
assert_eq "two files and an empty stdin: counts add up" "12 3" \
	"$(json_get "$out" input.decisions) $(json_get "$out" input.files)"

# --since / --until: [11:00, 13:00)
out=$("$REPORT" --json --since 2026-12-04T11:00Z --until '2026-12-04 14:00+01:00' "$T_DIR/rsyslog.log")
assert_eq "--since/--until: decisions inside, outside, hours" \
	"4 4 2026-12-04T11:00Z=2 2026-12-04T12:00Z=2" \
	"$(json_get "$out" input.decisions) $(json_get "$out" input.outside_since_until) $(hours_of <<<"$out")"
out=$("$REPORT" --json --since 2026-12-04 "$T_DIR/bare.log")
assert_eq "--since on lines without a time: none counted, all said" "0 10" \
	"$(json_get "$out" input.decisions) $(json_get "$out" input.without_time)"
"$REPORT" --since yesterday "$T_DIR/bare.log" >/dev/null 2>"$T_DIR/err"
assert_eq "a malformed --since is a usage error" "64" "$?"

# one domain's history, one client's
out=$("$REPORT" --json --domain NULL-MX.mxs.test "$T_DIR/rsyslog.log")
assert_eq "--domain: its decisions, oldest first (repeats left out)" \
	"2026-12-04T10:00:00Z sender reject 192.0.2.10 a@null-mx.mxs.test|2026-12-04T12:00:00Z recipient reject 192.0.2.11 x@null-mx.mxs.test|2026-12-04T13:00:00Z sender reject 192.0.2.11 d@null-mx.mxs.test" \
	"$("$PY" -c 'import json, sys; print("|".join("%s %s %s %s %s" % (h["time"], h["role"], h["action"], h["client_addr"], h["sender"] if h["role"] == "sender" else h["recipient"]) for h in json.load(sys.stdin)["history"]))' <<<"$out")"
out=$("$REPORT" --client 192.0.2.10 --table history "$T_DIR/rsyslog.log")
assert_match "--client: text history names the domains" \
	'2026-12-04T11:00:00Z +mxsane-policyd +sender +nxdomain +reject +nonexistent\.mxs\.test +192\.0\.2\.10' "$out"
assert_eq "--client: two rows" 2 "$(grep -c '192\.0\.2\.10' <<<"$out")"

# CSV: one table, RFC 4180
out=$("$REPORT" --csv --table clients "$T_DIR/rsyslog.log" | tr -d '\r')
assert_eq "--csv --table clients" \
	'client_addr,messages,refused,domains
192.0.2.10,2,2,"null-mx.mxs.test (1), nonexistent.mxs.test (1)"
192.0.2.11,1,1,null-mx.mxs.test (1)' "$out"
"$REPORT" --csv --table clients --table hours "$T_DIR/rsyslog.log" >/dev/null 2>&1
assert_eq "--csv with two tables is a usage error" 64 "$?"

# the text tables: aligned columns, counts right-aligned
out=$("$REPORT" --table senders "$T_DIR/rsyslog.log")
assert_eq "text: the senders table" \
	"Top refused sender domains (messages; would_refuse: monitor mode)
  domain                verdicts  refused  would_refuse
  --------------------  --------  -------  ------------
  null-mx.mxs.test      null_mx         2             0
  nonexistent.mxs.test  nxdomain        1             0" "$out"
out=$("$REPORT" --top 1 --table senders "$T_DIR/rsyslog.log")
assert_eq "--top 1" 1 "$(grep -c 'mxs.test' <<<"$out")"

# monitor mode, JSON records: nothing refused, everything that would have been is said
cat >"$T_DIR/monitor.conf" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 3000; };
mode = "monitor";
log = { format = "json"; };
EOF
before=$(date -u +%s)
{
	req m1.1 192.0.2.12 e@null-mx.mxs.test r1@ok-mx.mxs.test
	req m1.1 192.0.2.12 e@null-mx.mxs.test r2@null-mx.mxs.test
	req m2.1 192.0.2.12 f@nonexistent.mxs.test r1@ok-mx.mxs.test
} | run_policyd "$T_DIR/monitor.conf" "$T_DIR/monitor.err"
after=$(date -u +%s)
grep '"verdict"' "$T_DIR/monitor.err" >"$T_DIR/monitor.log"
assert_eq "monitor mode: 6 JSON decision lines" 6 "$(wc -l <"$T_DIR/monitor.log")"
times=$("$PY" - "$before" "$after" "$T_DIR/monitor.log" <<'EOF'
import datetime, json, sys
lo, hi = int(sys.argv[1]), int(sys.argv[2]) + 1
ok = 0
for l in open(sys.argv[3]):
    t = json.loads(l.split(": ", 1)[1])["time"]
    assert t.endswith("Z") and len(t) == 24, t
    s = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    ok += lo <= s <= hi
print(ok)
EOF
)
assert_eq "every JSON record has an RFC 3339 UTC time of when it was logged" 6 "$times"
out=$("$REPORT" --json "$T_DIR/monitor.log")
assert_eq "monitor: would have refused, by role and verdict" \
	"recipient/null_mx/warn/reject=1 sender/null_mx/warn/reject=1 sender/nxdomain/warn/reject=1" \
	"$("$PY" -c 'import json, sys; print(" ".join(sorted("%s/%s/%s/%s=%d" % (x["role"], x["verdict"], x["action"], x["would"], x["count"]) for x in json.load(sys.stdin)["would"])))' <<<"$out")"
assert_eq "monitor: sender domains that would have been refused, per message" \
	"nonexistent.mxs.test:0:1 null-mx.mxs.test:0:1" \
	"$("$PY" -c 'import json, sys; print(" ".join("%s:%d:%d" % (x["domain"], x["refused"], x["would_refuse"]) for x in json.load(sys.stdin)["senders"]))' <<<"$out")"
out=$("$REPORT" --table would "$T_DIR/monitor.log")
assert_match "monitor: the text table" 'sender +nxdomain +warn +reject +1' "$out"

# bad input: a cut decision line, binary garbage, a 10 MiB line, an unreadable file
{
	cat "$T_DIR/rsyslog.log"
	head -n 1 "$T_DIR/rsyslog.log" | cut -c1-120
	printf 'garbage \001\002\377\000 more\n'
	head -c 10485760 /dev/zero | tr '\0' 'x'
	echo
	head -c 100 "$T_DIR/rsyslog.log" # the last line, cut and without a newline
} >"$T_DIR/bad.log"
out=$("$REPORT" --json "$T_DIR/bad.log" 2>"$T_DIR/err")
assert_eq "bad lines: skipped and counted, the good ones still counted" "0 6 4 1" \
	"$? $(json_get "$out" input.decisions) $(json_get "$out" input.bad_lines) $(json_get "$out" input.overlong_lines)"
assert_match "bad lines: said on stderr with the first one's place" "skipped 4 bad lines .*bad.log line 21" "$(cat "$T_DIR/err")"
head -c $(($(stat -c %s "$T_DIR/rsyslog.log.2.gz") / 2)) "$T_DIR/rsyslog.log.2.gz" >"$T_DIR/cut.gz"
out=$("$REPORT" --json "$T_DIR/cut.gz" "$T_DIR/missing.log" "$T_DIR/rsyslog.log" 2>"$T_DIR/err")
assert_eq "a cut gzip file and a missing one: exit 1, the rest still reported" "1 2 2" \
	"$? $(json_get "$out" input.files) $(json_get "$out" input.unreadable_files)"
assert_match "and both are named on stderr" "cut.gz.*missing.log|missing.log.*cut.gz" "$(tr '\n' ' ' <"$T_DIR/err")"
head -c 1000000 /dev/urandom >"$T_DIR/random.bin"
"$REPORT" "$T_DIR/random.bin" >/dev/null 2>&1
assert_eq "random bytes: exit 0" 0 "$?"

"$REPORT" --help | grep -q -- '--since'
assert_eq "--help prints the usage, exit 0" 0 "$?"
finish

#!/usr/bin/env bash
# 61-log-forging.sh - logs cannot be forged.  CR, LF, other control
# characters, quotes, backslashes, '=' and non-ASCII octets are fed in through every way in:
#   - the milter (miltertest, tests/milter/hostile.lua): HELO names, senders, recipients;
#   - the policy daemon (raw socket): CR and other controls inside attribute values
#     (helo_name, client_name, sender, recipient, instance, queue_id; LF ends a policy line);
#   - DNS data: MX targets with CR, LF, ESC, quotes, backslashes, '=' and octets >= 0x80
#     (tests/zones/hostile.test.zone);
# each daemon once with log.format "kv" and once with "json", logging to stderr (-f).  Then
# every log line is parsed and it is asserted that: each line starts with the daemon's
# "NAME[PID]: " prefix (an injected line break would start a line without it); no raw
# control character and, in kv, no octet outside printable ASCII; each decision line parses
# completely (kv grammar / json.loads), has each key once, only known keys, one verdict;
# there is one decision line per check; and every injected value round-trips: decoding the
# logged field (kv: quotes off, \xHH to the octet; json: json.loads) gives back exactly the
# octets sent (json: invalid UTF-8 octets as U+FFFD, one per octet, as log.h documents).
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-milter mxsane-policyd
need_cmd miltertest
LUA="$MXS_TOP/tests/milter/hostile.lua"
start_knot || { not_ok "knotd starts" "see the log above"; finish; }
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)
for fmt in kv json; do
	cat >"$T_DIR/$fmt.conf" <<CONF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
log = { format = "$fmt"; };
CONF
done

hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }

# The hostile values (hex), one per line.  Each is used as HELO, sender local part and
# recipient local part; the policy daemon gets the LF-free ones.
"$PY" - >"$T_DIR/values" <<'PYEOF'
vals = [
    b"cr\rhere", b"lf\nhere", b"crlf\r\nmxsane-milter[1]: verdict=ok action=accept",
    b"\x01\x02\x07\x08\x0b\x0c\x1b[2J\x7f", b"tab\there", b'quote"inside', b"back\\x41slash",
    b"key=value verdict=ok", b"sp ace", b"utf8-\xc3\xa9t\xc3\xa9", b"bad-utf8-\xff\xfe\xc3",
    b"%s%n%x", b"\"", b"=", b"\\",
]
for v in vals:
    print(v.hex())
PYEOF
NV=$(wc -l <"$T_DIR/values")

# ---- the log checker: check.py LOG FORMAT PREFIX EXPECT DECISIONS
# EXPECT: lines "FIELD HEX" (a value that must round-trip in that field of some decision);
# DECISIONS: the number of decision lines expected.  Prints one "ok ..." or "bad ..." per
# property.
cat >"$T_DIR/check.py" <<'PYEOF'
import json, re, sys
path, fmt, prefix, expect_path, ndec = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
KNOWN = set("time queue_id verdict action would mode outage role repeat policy domain reply mx ttl cache ms peer instance "
            "client_addr client_name helo sender recipient reason".split())
raw = open(path, "rb").read()
lines = raw.split(b"\n")
if lines and lines[-1] == b"":
    lines.pop()
pre = re.compile(rb"^" + re.escape(prefix.encode()) + rb"\[[0-9]+\]: ")
bad = []
def fail(what):
    bad.append(what)
# 1. every line has the prefix; no raw control characters
for i, l in enumerate(lines):
    if not pre.match(l):
        fail("line %d has no '%s[PID]: ' prefix: %r" % (i + 1, prefix, l[:120]))
    if re.search(rb"[\x00-\x1f\x7f]", l):
        fail("line %d holds a raw control character: %r" % (i + 1, l[:160]))
    if fmt == "kv" and re.search(rb"[\x80-\xff]", l):
        fail("line %d holds a non-ASCII octet: %r" % (i + 1, l[:160]))
    if fmt == "json":
        try:
            l.decode("utf-8")
        except UnicodeDecodeError:
            fail("line %d is not UTF-8: %r" % (i + 1, l[:160]))
# 2. decision lines parse completely
tok = re.compile(rb'([a-z_]+)=("[^"]*"|[^ "]*)(?: |$)')
def kv_unescape(v):
    if v.startswith(b'"'):
        v = v[1:-1]
    if b"\\" in re.sub(rb"\\x[0-9a-fA-F]{2}", b"", v):
        raise ValueError("stray backslash in %r" % v)
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), v)
decisions = []
for i, l in enumerate(lines):
    m = pre.match(l)
    if not m:
        continue
    body = l[m.end():]
    if fmt == "kv":
        if not (body.startswith(b"verdict=") or body.startswith(b"queue_id=")):
            continue
        rec, pos, dup = {}, 0, []
        while pos < len(body):
            t = tok.match(body, pos)
            if not t:
                fail("line %d does not parse as key=value at %d: %r" % (i + 1, pos, body[pos:pos + 60]))
                break
            k = t.group(1).decode()
            if k in rec:
                dup.append(k)
            try:
                rec[k] = kv_unescape(t.group(2))
            except ValueError as e:
                fail("line %d: %s" % (i + 1, e))
            pos = t.end()
    else:
        if not body.startswith(b"{"):
            continue
        try:
            obj = json.loads(body.decode("utf-8"))
        except ValueError as e:
            fail("line %d is not one JSON object: %s: %r" % (i + 1, e, body[:120]))
            continue
        pairs = json.loads(body.decode("utf-8"), object_pairs_hook=lambda p: p)
        keys = [k for k, _ in pairs]
        dup = [k for k in set(keys) if keys.count(k) > 1]
        rec = {k: v for k, v in obj.items()}
    if dup:
        fail("line %d has keys twice: %s" % (i + 1, dup))
    unknown = set(rec) - KNOWN
    if unknown:
        fail("line %d has unknown keys %s" % (i + 1, sorted(unknown)))
    if "verdict" not in rec:
        fail("line %d: a decision without a verdict" % (i + 1))
    decisions.append(rec)
if len(decisions) != ndec:
    fail("%d decision lines, expected %d (one per check)" % (len(decisions), ndec))
# 3. every injected value round-trips
def json_expect(b):
    out, i = [], 0
    while i < len(b):
        for n in (4, 3, 2):
            try:
                out.append(b[i:i + n].decode("utf-8"))
                if len(out[-1]) == 1 and ord(out[-1]) >= 0x80:
                    i += n
                    break
                out.pop()
            except UnicodeDecodeError:
                pass
        else:
            out.append(chr(b[i]) if b[i] < 0x80 else "\ufffd")
            i += 1
    return "".join(out)
missing = 0
for l in open(expect_path):
    field, h = l.split()
    want = bytes.fromhex(h)
    want = want if fmt == "kv" else json_expect(want)
    if not any(d.get(field) == want for d in decisions):
        missing += 1
        fail("%s %r does not round-trip (logged: %r)" % (field, want,
             sorted({repr(d.get(field))[:80] for d in decisions})[:4]))
for b in bad[:12]:
    print("bad " + b)
if len(bad) > 12:
    print("bad ... and %d more" % (len(bad) - 12))
print("checked lines=%d decisions=%d expected_values=%d missing=%d problems=%d" %
      (len(lines), len(decisions), sum(1 for _ in open(expect_path)), missing, len(bad)))
PYEOF

# check NAME LOG FORMAT PREFIX EXPECT DECISIONS
check() {
	local r
	r=$("$PY" "$T_DIR/check.py" "$2" "$3" "$4" "$5" "$6")
	echo "# $1: $(tail -n 1 <<<"$r")"
	assert_eq "$1: every line prefixed, no raw controls, decisions parse, values round-trip" "" \
		"$(grep '^bad' <<<"$r")"
}

for fmt in kv json; do
	# ---------------- the milter ----------------
	PORT=$(free_port)
	start_bg "milter-$fmt" "$BUILD_DIR/mxsane-milter" -f "${USER_ARGS[@]}" -c "$T_DIR/$fmt.conf" \
		-p "inet:$PORT@127.0.0.1"
	MPID=$BG_PID
	wait_port "$PORT" || { not_ok "milter ($fmt) starts" "$(cat "$T_DIR/milter-$fmt.log")"; continue; }
	: >"$T_DIR/expect-milter"
	ndec=0
	fails=
	while read -r v; do
		# HELO and recipient local part hostile, sender ok: sender + 3 recipient decisions
		printf '%s\n' "$(hex '<')${v}$(hex '@ok-mx.mxs.test>')" \
			"$(hex '<')${v}$(hex '@null-mx.mxs.test>')" "$(hex '<bob@')${v}$(hex '.mxs.test>')" \
			>"$T_DIR/rcpts"
		out=$(timeout -k 5 60 miltertest -s "$LUA" -D "sock=inet:$PORT@127.0.0.1" -D "helo=$v" \
			-D "rcptfile=$T_DIR/rcpts" 2>&1)
		[ $? = 0 ] || fails+="[$v: $out] "
		ndec=$((ndec + 4))
		echo "helo $v" >>"$T_DIR/expect-milter"
		echo "recipient $(hex '<')${v}$(hex '@ok-mx.mxs.test>')" >>"$T_DIR/expect-milter"
		echo "recipient $(hex '<')${v}$(hex '@null-mx.mxs.test>')" >>"$T_DIR/expect-milter"
		echo "recipient $(hex '<bob@')${v}$(hex '.mxs.test>')" >>"$T_DIR/expect-milter"
		# hostile sender: one decision (the transaction may end there)
		out=$(timeout -k 5 60 miltertest -s "$LUA" -D "sock=inet:$PORT@127.0.0.1" \
			-D "from=$(hex '<')${v}$(hex '@null-mx.mxs.test>')" 2>&1)
		[ $? = 0 ] || fails+="[$v: $out] "
		ndec=$((ndec + 1))
		echo "sender $(hex '<')${v}$(hex '@null-mx.mxs.test>')" >>"$T_DIR/expect-milter"
	done <"$T_DIR/values"
	# DNS data: odd MX targets (4 recipients, one sender decision)
	printf '%s\n' "$(hex '<a@crlf-mx.hostile.test>')" "$(hex '<a@quote-mx.hostile.test>')" \
		"$(hex '<a@esc-mx.hostile.test>')" "$(hex '<a@mixed-mx.hostile.test>')" >"$T_DIR/rcpts"
	out=$(timeout -k 5 60 miltertest -s "$LUA" -D "sock=inet:$PORT@127.0.0.1" \
		-D "rcptfile=$T_DIR/rcpts" 2>&1)
	[ $? = 0 ] || fails+="[dns: $out] "
	ndec=$((ndec + 5))
	assert_eq "milter ($fmt): every session completed" "" "$fails"
	stop_pid "$MPID"
	check "milter ($fmt)" "$T_DIR/milter-$fmt.log" "$fmt" mxsane-milter "$T_DIR/expect-milter" "$ndec"
	# the odd DNS names are in the log, escaped, inside the mx / reason values only
	if [ "$fmt" = kv ]; then
		assert_match "milter (kv): the CR LF MX target is logged escaped, inside its value" \
			'domain=crlf-mx\.hostile\.test .*mx="?10 evil\\x5c013\\x5c010verdict\\x5c061ok' \
			"$(grep 'crlf-mx' "$T_DIR/milter-$fmt.log")"
	else
		assert_match "milter (json): the odd MX targets are logged" \
			'"mx":"10 q\\\\034uo\\\\092te' "$(grep 'quote-mx' "$T_DIR/milter-$fmt.log")"
	fi

	# ---------------- the policy daemon ----------------
	PORT=$(free_port)
	start_bg "policyd-$fmt" "$BUILD_DIR/mxsane-policyd" -f "${USER_ARGS[@]}" -c "$T_DIR/$fmt.conf" \
		-l "inet:127.0.0.1:$PORT"
	PPID_=$BG_PID
	wait_port "$PORT" || { not_ok "policyd ($fmt) starts" "$(cat "$T_DIR/policyd-$fmt.log")"; continue; }
	"$PY" - "$PORT" "$T_DIR/values" "$T_DIR/expect-policy" >"$T_DIR/policy-$fmt.out" <<'PYEOF'
import socket, sys
port, vals, expect = int(sys.argv[1]), sys.argv[2], sys.argv[3]
vals = [bytes.fromhex(l.strip()) for l in open(vals)]
vals = [v for v in vals if b"\n" not in v]          # LF ends a policy line
s = socket.create_connection(("127.0.0.1", port), timeout=10)
ex = open(expect, "w")
n = bad = 0
def ask(attrs):
    global n, bad
    req = b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
    req += b"".join(k + b"=" + v + b"\n" for k, v in attrs) + b"\n"
    s.sendall(req)
    d = b""
    while not d.endswith(b"\n\n"):
        b = s.recv(4096)
        if not b:
            break
        d += b
    n += 1
    if not d.startswith(b"action=") or b"\r" in d or d.count(b"\n") != 2:
        bad += 1
        print("bad reply %r" % d)
    return d
decisions = 0
for i, v in enumerate(vals):
    # every context attribute hostile; the sender ok, the recipient hostile: 2 checks
    ask([(b"client_address", b"192.0.2.%d" % (i + 1)), (b"client_name", v), (b"helo_name", v),
         (b"instance", v), (b"queue_id", v), (b"sender", b"s@ok-mx.mxs.test"),
         (b"recipient", v + b"@null-mx.mxs.test")])
    decisions += 2
    for f in ("client_name", "helo", "instance", "queue_id"):
        ex.write("%s %s\n" % (f, v.hex()))
    ex.write("recipient %s\n" % (v + b"@null-mx.mxs.test").hex())
    ex.write("sender %s\n" % (v + b"@null-mx.mxs.test").hex())
    # hostile sender at a null MX domain: 1 check when it is rejected (a real null MX), 2
    # when the address is unparseable (skipped) and the recipient is checked as well
    d = ask([(b"client_address", b"192.0.2.200"), (b"sender", v + b"@null-mx.mxs.test"),
             (b"recipient", b"r@ok-mx.mxs.test")])
    decisions += 1 if d.startswith(b"action=550 5.7.27 ") else 2
# DNS data
for d in (b"crlf-mx", b"quote-mx", b"esc-mx", b"mixed-mx"):
    ask([(b"client_address", b"192.0.2.201"), (b"sender", b"s@ok-mx.mxs.test"),
         (b"recipient", b"r@" + d + b".hostile.test")])
    decisions += 2
print("requests=%d bad=%d decisions=%d" % (n, bad, decisions))
PYEOF
	R=$(tail -n 1 "$T_DIR/policy-$fmt.out")
	assert_match "policyd ($fmt): every hostile request answered with a well-formed reply" \
		'^requests=[0-9]+ bad=0 decisions=[0-9]+$' "$R"
	pdec=${R##*decisions=}
	stop_pid "$PPID_"
	check "policyd ($fmt)" "$T_DIR/policyd-$fmt.log" "$fmt" mxsane-policyd "$T_DIR/expect-policy" "$pdec"
done

for f in "$T_DIR"/*.log; do
	if grep -qaE 'Sanitizer|runtime error' "$f"; then
		not_ok "no sanitizer findings in ${f##*/}" "$(grep -am3 -E 'Sanitizer|runtime error' "$f")"
	fi
done
finish

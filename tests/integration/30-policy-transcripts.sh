#!/usr/bin/env bash
# 30-policy-transcripts.sh - mxsane-policyd over real TCP against a real knotd: request bytes
# in, exact reply bytes out.
#
# Cases are files: tests/policy/NAME.req is sent on a fresh connection, NAME.expect holds the
# exact bytes that must come back.  NAME decides how:
#   ok-*     sent in one write; after the expected bytes nothing more may arrive and the
#            connection must stay open (Postfix reuses it);
#   split-*  the same, but sent one byte at a time;
#   bad-*    malformed: the expected bytes (usually none), then the server closes the
#            connection; a witness connection opened before is still answered afterwards,
#            and the log names the client and the reason.
# The size-limit cases (NUL byte, 2048/2049-byte lines, 65536/65537-byte requests, 256/257
# attributes) are generated here into $T_DIR, since they are unwieldy as files.
# VALGRIND=1 runs the daemon under valgrind memcheck (zero errors, no definite leak).
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-policyd
POLICYD="$BUILD_DIR/mxsane-policyd"
start_knot || { not_ok "knotd starts" "see the log above"; finish; }

CONF="$T_DIR/mxsane.conf"
cat >"$CONF" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 3000; };
skip = { domains = [ "null-mx-a.mxs.test" ]; clients = [ "192.0.2.0/24" ]; };
EOF

USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)
WRAP=()
if [ "${VALGRIND:-0}" = 1 ]; then
	need_cmd valgrind
	WRAP=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
		--track-fds=no --log-file="$T_DIR/valgrind.log")
fi

# start_policyd: on a free port; sets PORT, PD_PID, PD_LOG.
start_policyd() {
	local attempt
	for attempt in 1 2 3; do
		PORT=$(free_port) || return 1
		PD_LOG="$T_DIR/policyd.$attempt.log"
		"${WRAP[@]}" "$POLICYD" -f -c "$CONF" -l "inet:127.0.0.1:$PORT" "${USER_ARGS[@]}" \
			</dev/null >"$PD_LOG" 2>&1 &
		PD_PID=$!
		track_pid "$PD_PID"
		wait_port "$PORT" && return 0
		cat "$PD_LOG" >&2
		stop_pid "$PD_PID"
	done
	return 1
}
start_policyd || { not_ok "mxsane-policyd starts" "see above"; finish; }
ok "mxsane-policyd listens on inet:127.0.0.1:$PORT"

# ---- generated cases at the size limits ----
GEN="$T_DIR/gen"
mkdir -p "$GEN"
"$PY" - "$GEN" <<'EOF'
import sys, os
d = sys.argv[1]
head = "request=smtpd_access_policy\nprotocol_state=RCPT\nsender=alice@ok-mx.mxs.test\nrecipient=bob@ok-mx.mxs.test\n"
DUNNO = "action=DUNNO\n\n"
def put(name, req, expect):
    open(os.path.join(d, name + ".req"), "wb").write(req.encode("latin-1"))
    open(os.path.join(d, name + ".expect"), "wb").write(expect.encode())
def line(n):                      # an unknown attribute line of exactly n bytes before "\n"
    return "x_pad=" + "a" * (n - 6) + "\n"
def filled(total):                # head + pad lines + "\n" == total bytes, pad lines <= 2048
    body, rest = head, total - len(head) - 1
    while rest > 0:
        n = min(2048, rest - 1)
        if rest - (n + 1) in range(1, 8):  # leave room for a last line of >= 7 bytes
            n -= 8
        body += line(n)
        rest -= n + 1
    assert len(body) + 1 == total, (len(body), total)
    return body + "\n"
put("ok-line-2048", head + line(2048) + "\n", DUNNO)
put("bad-line-2049", head + line(2049) + "\n", "")
put("ok-line-2048-crlf", (head + line(2048)).replace("\n", "\r\n") + "\r\n", DUNNO)
put("ok-request-65536", filled(65536), DUNNO)
put("bad-request-65537", filled(65537), "")
put("ok-attrs-256", head + "".join("x_a%d=%d\n" % (i, i) for i in range(256 - 4)) + "\n", DUNNO)
put("bad-attrs-257", head + "".join("x_a%d=%d\n" % (i, i) for i in range(257 - 4)) + "\n", "")
put("bad-nul", "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=bob@null-mx\0.mxs.test\n\n", "")
put("bad-nul-in-name", "request=smtpd_access_policy\nprotocol_state=RCPT\nrecip\0ient=x\n\n", "")
put("bad-line-no-end", "request=smtpd_access_policy\n" + "x_long=" + "b" * 5000, "")
EOF
ok "generated the size-limit cases"

declare -A WHY=(
	[bad-no-request]="request ended without a request= attribute"
	[bad-no-equals]="a line without '='"
	[bad-empty-name]="an attribute with an empty name"
	[bad-duplicate]="attribute recipient given twice"
	[bad-request-type]="unsupported request type"
	[bad-empty-line-only]="request ended without a request= attribute"
	[bad-after-good]="a line without '='"
	[bad-nul]="a NUL byte"
	[bad-nul-in-name]="a NUL byte"
	[bad-line-2049]="a line longer than 2048 bytes"
	[bad-line-no-end]="a line longer than 2048 bytes"
	[bad-request-65537]="request longer than 65536 bytes"
	[bad-attrs-257]="more than 256 attributes"
)

# ---- run every case ----
"$PY" - "$PORT" "$MXS_TOP/tests/policy" "$GEN" >"$T_DIR/results" 2>&1 <<'EOF'
import glob, os, select, socket, sys, time
port = int(sys.argv[1])
GOOD = open(os.path.join(sys.argv[2], "ok-dunno.req"), "rb").read()

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read(s, want, timeout):
    """Read until `want` bytes (None: until EOF) or timeout; returns (data, closed)."""
    data, end = b"", time.time() + timeout
    while want is None or len(data) < want:
        left = end - time.time()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            return data, False
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return data, True
        if not b:
            return data, True
        data += b
    return data, False

def send(s, data, split):
    try:
        if split:
            for i in range(len(data)):
                s.send(data[i:i + 1])
                time.sleep(0.001)
        else:
            s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before it has read everything: that is the point

def report(ok, name, detail="", extra=""):
    print("%s\t%s\t%s\t%s" % ("ok" if ok else "fail", name, detail, extra), flush=True)

cases = []
for d in sys.argv[2:]:
    cases += sorted(glob.glob(os.path.join(d, "*.req")))
for path in cases:
    name = os.path.basename(path)[:-4]
    req = open(path, "rb").read()
    expect = open(path[:-4] + ".expect", "rb").read()
    if name.startswith("bad-"):
        witness = connect()
        s = connect()
        lport = s.getsockname()[1]
        send(s, req, False)
        got, closed = read(s, None, 10)
        s.close()
        if got != expect:
            report(False, name, "reply %r, expected %r" % (got[:300], expect[:300]), lport)
            continue
        if not closed:
            report(False, name, "connection not closed", lport)
            continue
        send(witness, GOOD, False)
        w, wclosed = read(witness, 14, 10)
        witness.close()
        if w != b"action=DUNNO\n\n":
            report(False, name, "witness connection got %r (closed=%s)" % (w, wclosed), lport)
            continue
        report(True, name, "closed without a reply; witness answered", lport)
    else:
        s = connect()
        t0 = time.time()
        send(s, req, name.startswith("split-"))
        got, closed = read(s, len(expect), 10)
        ms = (time.time() - t0) * 1000
        more, closed2 = read(s, 1, 0.3)
        s.close()
        if got + more != expect:
            report(False, name, "reply %r, expected %r" % ((got + more)[:400], expect[:400]))
        elif closed or closed2:
            report(False, name, "connection closed after the reply")
        else:
            report(True, name, "%d bytes in %.0f ms, connection kept" % (len(got), ms))
EOF
if ! grep -q . "$T_DIR/results"; then
	not_ok "transcript runner" "no output"
fi
n=0
while IFS=$'\t' read -r st name detail lport; do
	case $st in
	ok) ok "$name: $detail" ;;
	fail) not_ok "$name" "$detail" ;;
	*) not_ok "transcript runner" "$st $name $detail" ;;
	esac
	n=$((n + 1))
	case $name in bad-*)
		why=${WHY[$name]:-}
		if [ -z "$why" ]; then
			not_ok "$name: log reason" "no expected reason in the WHY table"
		elif grep -qF "client 127.0.0.1:$lport: malformed request: $why" "$PD_LOG"; then
			ok "$name: logged with client and reason ($why)"
		else
			not_ok "$name: log reason" "no 'client 127.0.0.1:$lport: malformed request: $why' in the log"
		fi
		;;
	esac
done <"$T_DIR/results"
[ "$n" -ge 40 ] && ok "$n cases run" || not_ok "cases run" "only $n"

# ---- the decision log line carries the request's context (requirement 6) ----
line=$(grep -F 'recipient=bob@null-mx.mxs.test' "$PD_LOG" | grep -F 'verdict=null_mx' |
	grep -F 'role=recipient' | head -n 1)
for kv in "verdict=null_mx" "action=reject" "reply=\"556 5.1.10\"" "instance=1a2b.5f3e4d.1" \
	"client_addr=198.51.100.20" "client_name=client.example" "helo=client.example" \
	"sender=alice@ok-mx.mxs.test" "recipient=bob@null-mx.mxs.test" "domain=null-mx.mxs.test" \
	"cache=" "ms=" "ttl="; do
	case $line in
	*"$kv"*) ok "decision log has $kv" ;;
	*) not_ok "decision log has $kv" "line: $line" ;;
	esac
done
grep -q 'verdict=mx_cname action=warn' "$PD_LOG" && ok "warn is logged" ||
	not_ok "warn is logged" "no 'verdict=mx_cname action=warn' line"
grep -q 'verdict=skipped.*reason="authenticated sender"' "$PD_LOG" &&
	ok "SASL-authenticated sender check logged as skipped" ||
	not_ok "SASL skip logged" "no skipped line for the authenticated sender"
grep -q 'reason="client 192.0.2.7 is in skip.clients"' "$PD_LOG" &&
	ok "skip.clients applied to client_address" || not_ok "skip.clients logged" "no line"

# ---- clean stop ----
kill -0 "$PD_PID" 2>/dev/null && ok "daemon survived every case" || not_ok "daemon alive" "it died"
kill -TERM "$PD_PID"
for _ in $(seq 100); do kill -0 "$PD_PID" 2>/dev/null || break; sleep 0.1; done
wait "$PD_PID"
rc=$?
assert_eq "exit status after SIGTERM" 0 "$rc"
grep -q 'stopped: .* requests answered' "$PD_LOG" && ok "stop logged with counters" ||
	not_ok "stop logged" "$(tail -n 3 "$PD_LOG")"
if [ "${VALGRIND:-0}" = 1 ]; then
	if grep -q 'ERROR SUMMARY: 0 errors' "$T_DIR/valgrind.log" &&
		! grep -q 'definitely lost: [1-9]' "$T_DIR/valgrind.log"; then
		ok "valgrind: no errors, no definite leak"
	else
		not_ok "valgrind" "$(grep -E 'ERROR SUMMARY|definitely lost' "$T_DIR/valgrind.log")"
	fi
fi
finish

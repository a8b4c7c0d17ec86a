#!/usr/bin/env bash
# 20-milter-miltertest.sh - miltertest (Debian's, Lua) drives the real mxsane-milter through
# MAIL and RCPT for every verdict class, against knotd serving tests/zones and faultdns for
# timeouts.  miltertest only tells "SMFIR_REPLYCODE" for a reply with text, so the milter's
# side of every session also passes through a small recording proxy that logs what the
# milter puts on the wire: the exact reply lines (code, enhanced code, text, % escaping) and
# the headers added at end of message.
#
# Covered: sender checks at MAIL and recipient checks at RCPT for null_mx, nxdomain,
# no_mail_host, broken_mx, dns timeout, mx_cname (warn header at eom), ok; one rejected and
# one accepted recipient in one transaction; monitor mode; skip.clients; skip.domains; an
# authenticated sender skipped but its recipients checked; the null sender and address
# literals skipped; checks.sender = false; reply text escaping; the decision log line with
# queue ID, client and HELO; and the engine thread stalled (ptrace): the milter answers
# 451 4.4.3 within its budget instead of hanging, and recovers.
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-milter
need_cmd miltertest
MILTER="$BUILD_DIR/mxsane-milter"
LUA="$MXS_TOP/tests/milter/session.lua"
BUDGET=2000 # resolver.timeout_ms of every instance

start_knot || { not_ok "knotd starts" "see the log above"; finish; }
start_faultdns || { not_ok "faultdns starts" "see the log above"; finish; }

# conf FILE [EXTRA-LINES]: knotd for the test zones, then faultdns (knotd refuses fault.test,
# c-ares then asks the next server); DNS errors not cached, so every timeout case waits.
conf() {
	{
		echo "resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\", \"127.0.0.1:$FAULT_PORT\" ];"
		echo "             timeout_ms = $BUDGET; };"
		echo "cache = { error_ttl = 0; };"
		[ $# -lt 2 ] || printf '%s\n' "$2"
	} >"$1"
}

# start_milter NAME CONF: start an instance on a fresh port; sets PORT, PID.
INSTANCES=()
start_milter() {
	local name=$1 cf=$2
	start_on_free_port "$name" "$MILTER" -f -d -u root -c "$cf" -p "inet:{PORT}@127.0.0.1" ||
		return 1
	PORT=$BG_PORT PID=$BG_PID
	INSTANCES+=("$PID")
}

# The recording proxy: listens on PROXY_PORT, forwards to the milter on port $1, and logs
# every packet the milter sends as "CONN CMD TEXT" (NULs shown as "|") to $WIRELOG before
# forwarding it, so a line is there by the time miltertest has the reply.
WIRELOG="$T_DIR/wire.log"
start_proxy() {
	PROXY_PORT=$(free_port) || return 1
	: >"$WIRELOG"
	start_bg proxy "$PY" -c '
import socket, struct, sys, threading
lport, tport, logpath = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
log = open(logpath, "a", buffering=1)
lock = threading.Lock()
def pump(src, dst, cid, record):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record:
                buf += data
                while len(buf) >= 4:
                    n = struct.unpack(">I", buf[:4])[0]
                    if len(buf) < 4 + n:
                        break
                    pkt, buf = buf[4:4 + n], buf[4 + n:]
                    text = pkt[1:].rstrip(b"\0").replace(b"\0", b"|").decode("latin-1")
                    with lock:
                        log.write("%d %s %s\n" % (cid, chr(pkt[0]), text))
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport))
ls.listen(16)
cid = 0
while True:
    c, _ = ls.accept()
    cid += 1
    m = socket.create_connection(("127.0.0.1", tport))
    threading.Thread(target=pump, args=(c, m, cid, False), daemon=True).start()
    threading.Thread(target=pump, args=(m, c, cid, True), daemon=True).start()
' "$PROXY_PORT" "$1" "$WIRELOG"
	wait_port "$PROXY_PORT"
}

# session PORT VAR=VALUE...: one miltertest session (tests/milter/session.lua); sets OUT (its
# output), RC, MS (elapsed), REPLIES (reply lines the milter sent, one per line, when PORT is
# the proxy) and HEADERS (headers it added, "Name: value").
session() {
	local port=$1 before t0 a
	shift
	local args=(-D "sock=inet:$port@127.0.0.1")
	for a in "$@"; do args+=(-D "$a"); done
	before=$(wc -l <"$WIRELOG")
	t0=$(now_ms)
	OUT=$(timeout -k 5 60 miltertest -s "$LUA" "${args[@]}" 2>"$T_DIR/miltertest.err")
	RC=$?
	MS=$(($(now_ms) - t0))
	[ "$RC" = 0 ] || OUT="$OUT
rc=$RC: $(cat "$T_DIR/miltertest.err")"
	REPLIES=$(tail -n +"$((before + 1))" "$WIRELOG" | sed -n 's/^[0-9]* y //p')
	HEADERS=$(tail -n +"$((before + 1))" "$WIRELOG" | sed -n 's/^[0-9]* h //p' | sed 's/|/: /')
}

# line PREFIX: the line of OUT starting with PREFIX ("mail", "rcpt <a@b>", "eom").
line() {
	grep -m1 -F -- "$1 " <<<"$OUT" || echo "<no '$1' line in: $(tr '\n' ';' <<<"$OUT")>"
}

CONF="$T_DIR/main.conf"
conf "$CONF"
start_milter milter "$CONF" || { not_ok "mxsane-milter starts" "see above"; finish; }
MAIN_PORT=$PORT
MAIN_PID=$PID
start_proxy "$MAIN_PORT" || { not_ok "proxy starts" "$(cat "$T_DIR/proxy.log")"; finish; }
P=$PROXY_PORT

# ---- negotiation: headers, body and DATA are not sent to the milter (speed)
session "$P" "from=<s@ok-mx.mxs.test>"
assert_eq "ok sender is accepted at MAIL" "mail continue" "$(line mail)"
NEG=$(sed -n 's/^[0-9]* O //p' "$WIRELOG" | head -n 1)
assert_match "negotiation asks for the queue ID, SASL login and client at MAIL (smfi_setsymlist)" \
	'i \{auth_authen\} \{client_addr\} \{client_name\}' "$NEG"
assert_match "the client from the MAIL macros, in the decision log" \
	'role=sender domain=ok-mx\.mxs\.test .*client_addr=192\.0\.2\.10 client_name=client\.test helo=helo\.test' \
	"$(tail -n 2 "$T_DIR/milter.log")"
# an MTA without macro lists and without SMFIP_NOCONNECT: the client comes with CONNECT
session "$P" "legacy=1" "ip=198.51.100.99" "name=old.test" "from=<s@ok-mx.mxs.test>"
assert_eq "older MTA: ok sender is accepted at MAIL" "mail continue" "$(line mail)"
assert_match "older MTA: the client from CONNECT, in the decision log" \
	'role=sender domain=ok-mx\.mxs\.test .*client_addr=198\.51\.100\.99 client_name=old\.test helo=helo\.test' \
	"$(tail -n 2 "$T_DIR/milter.log")"

# ---- sender checks at MAIL FROM: reply codes per RFC 7505 / RFC 3463, exactly
sender_case() { # label address expected-reply-line
	session "$P" "from=<$2>" "rcpts=<r@ok-mx.mxs.test>"
	assert_eq "MAIL $1: miltertest gets SMFIR_REPLYCODE" "mail replycode" "$(line mail)"
	assert_eq "MAIL $1: reply on the wire" "$3" "$REPLIES"
	assert_eq "MAIL $1: the transaction ends at MAIL" "" "$(grep '^rcpt' <<<"$OUT")"
}
sender_case "null MX" s@null-mx.mxs.test \
	"550 5.7.27 <s@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)"
sender_case "nxdomain" s@nonexistent.mxs.test \
	"550 5.1.8 <s@nonexistent.mxs.test>: nonexistent.mxs.test does not exist"
sender_case "no mail host" s@no-mail-host.mxs.test \
	"550 5.1.8 <s@no-mail-host.mxs.test>: no-mail-host.mxs.test has no mail server (no MX and no address records)"
sender_case "broken MX" s@mx-target-nx.mxs.test \
	"450 4.1.8 <s@mx-target-nx.mxs.test>: mx-target-nx.mxs.test has no usable mail server (nowhere.mxs.test does not exist (NXDOMAIN))"
sender_case "DNS timeout" s@timeout.fault.test \
	"451 4.4.3 <s@timeout.fault.test>: temporary DNS failure for timeout.fault.test (no answer for the MX lookup of timeout.fault.test within $BUDGET ms)"
if [ "$MS" -ge $((BUDGET - 200)) ] && [ "$MS" -lt $((BUDGET + 1500)) ]; then
	ok "MAIL DNS timeout answered within the budget ($MS ms for $BUDGET ms)"
else
	not_ok "MAIL DNS timeout answered within the budget" "$MS ms for $BUDGET ms"
fi

session "$P" "from=<s@mx-cname.mxs.test>" "rcpts=<r@ok-mx.mxs.test>" eom=1
assert_eq "MAIL mx_cname (warn): accepted" "mail continue" "$(line mail)"
assert_eq "MAIL mx_cname: end of message accepted" "eom continue" "$(line eom)"
assert_eq "MAIL mx_cname: X-MXSane header added at end of message" \
	"X-MXSane: mx_cname mx-cname.mxs.test (MX target alias-host.mxs.test is an alias)" \
	"$HEADERS"
assert_eq "MAIL mx_cname: miltertest sees the header" \
	"header mx_cname mx-cname.mxs.test (MX target alias-host.mxs.test is an alias)" \
	"$(line header)"

# ---- recipient checks at RCPT TO
rcpt_case() { # label address expected-reply-line
	session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<$2>"
	assert_eq "RCPT $1: sender accepted" "mail continue" "$(line mail)"
	assert_eq "RCPT $1: miltertest gets SMFIR_REPLYCODE" "rcpt <$2> replycode" \
		"$(line "rcpt <$2>")"
	assert_eq "RCPT $1: reply on the wire" "$3" "$REPLIES"
}
rcpt_case "null MX" bob@null-mx.mxs.test \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)"
rcpt_case "nxdomain" bob@nonexistent.mxs.test \
	"550 5.1.2 <bob@nonexistent.mxs.test>: nonexistent.mxs.test does not exist"
rcpt_case "no mail host" bob@no-mail-host.mxs.test \
	"550 5.1.2 <bob@no-mail-host.mxs.test>: no-mail-host.mxs.test has no mail server (no MX and no address records)"
rcpt_case "broken MX" bob@mx-target-nx.mxs.test \
	"450 4.4.4 <bob@mx-target-nx.mxs.test>: mx-target-nx.mxs.test has no usable mail server (nowhere.mxs.test does not exist (NXDOMAIN))"
# (another name than at MAIL: a check may share a lookup still in flight from an earlier one)
rcpt_case "DNS timeout" bob@slow5000.fault.test \
	"451 4.4.3 <bob@slow5000.fault.test>: temporary DNS failure for slow5000.fault.test (no answer for the MX lookup of slow5000.fault.test within $BUDGET ms)"
if [ "$MS" -ge $((BUDGET - 200)) ] && [ "$MS" -lt $((BUDGET + 1500)) ]; then
	ok "RCPT DNS timeout answered within the budget ($MS ms for $BUDGET ms)"
else
	not_ok "RCPT DNS timeout answered within the budget" "$MS ms for $BUDGET ms"
fi

session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@mx-cname.mxs.test>" eom=1
assert_eq "RCPT mx_cname (warn): accepted" "rcpt <bob@mx-cname.mxs.test> continue" \
	"$(line "rcpt <bob@mx-cname.mxs.test>")"
assert_eq "RCPT mx_cname: X-MXSane header at end of message" \
	"X-MXSane: mx_cname mx-cname.mxs.test (MX target alias-host.mxs.test is an alias)" \
	"$HEADERS"
assert_eq "RCPT mx_cname: no reply code sent" "" "$REPLIES"

session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@ok-mx.mxs.test>" eom=1
assert_eq "RCPT ok: accepted" "rcpt <bob@ok-mx.mxs.test> continue" \
	"$(line "rcpt <bob@ok-mx.mxs.test>")"
assert_eq "RCPT ok: message accepted at DATA, no end of message, no header" "data accept|0|" \
	"$(line data)|$(grep -c '^eom' <<<"$OUT")|$HEADERS"

# ---- a DNS wait for one connection never blocks another; many connections at once
# (libmilter's worker pool) each get their own answers
(
	session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@slow3000.fault.test>"
	echo "$MS $(line "rcpt <bob@slow3000.fault.test>")" >"$T_DIR/slow.out"
) &
SLOW=$!
sleep 0.5
session "$MAIN_PORT" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test> <carol@nonexistent-2.mxs.test>"
assert_eq "while another connection waits for DNS: answered" \
	"rcpt <carol@nonexistent-2.mxs.test> replycode" "$(line "rcpt <carol@nonexistent-2.mxs.test>")"
if [ "$MS" -lt 1000 ]; then
	ok "while another connection waits for DNS: answered at once ($MS ms)"
else
	not_ok "while another connection waits for DNS: answered at once" "$MS ms"
fi
wait "$SLOW"
assert_match "the waiting connection got its own answer" \
	'^[0-9]+ rcpt <bob@slow3000\.fault\.test> replycode$' "$(cat "$T_DIR/slow.out")"
SLOW_MS=$(awk '{ print $1 }' "$T_DIR/slow.out")
if [ "${SLOW_MS:-0}" -ge "$BUDGET" ]; then
	ok "... after the budget ($SLOW_MS ms): the fast one did not wait for it"
else
	not_ok "the waiting connection answered after the budget" "${SLOW_MS:-?} ms"
fi
PAR=()
for i in $(seq 1 24); do
	case $((i % 4)) in
	0) r="null-mx.mxs.test" e=replycode ;;
	1) r="ok-mx.mxs.test" e=continue ;;
	2) r="nx-$i.mxs.test" e=replycode ;;
	3) r="implicit-a.mxs.test" e=continue ;;
	esac
	(
		session "$MAIN_PORT" "from=<s$i@ok-mx.mxs.test>" "rcpts=<u$i@$r>" "qid=Q$i"
		echo "$(line "rcpt <u$i@$r>") expected $e"
	) >"$T_DIR/par.$i" &
	PAR+=($!)
done
wait "${PAR[@]}"
BAD=$(cat "$T_DIR"/par.* | awk '$3 != $5' | head -3)
assert_eq "24 concurrent connections: every recipient got its own verdict" "" "$BAD"
assert_eq "24 concurrent connections: all answered" 24 "$(cat "$T_DIR"/par.* | grep -c expected)"
assert_eq "24 concurrent connections: each log line has its own queue ID and recipient" 24 \
	"$(grep -cE 'queue_id=Q([0-9]+) .*role=recipient .*recipient=<u\1@' "$T_DIR/milter.log")"

# ---- per recipient: one rejected, one accepted, in one transaction; two warn headers
session "$P" "from=<s@mx-cname.mxs.test>" \
	"rcpts=<bob@null-mx.mxs.test> <alice@ok-mx.mxs.test> <carol@mx-cname-ext.mxs.test>" eom=1
assert_eq "per recipient: the null MX recipient is rejected" \
	"rcpt <bob@null-mx.mxs.test> replycode" "$(line "rcpt <bob@null-mx.mxs.test>")"
assert_eq "per recipient: the good recipient after it is accepted" \
	"rcpt <alice@ok-mx.mxs.test> continue" "$(line "rcpt <alice@ok-mx.mxs.test>")"
assert_eq "per recipient: exactly one reply, the rejection" \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$REPLIES"
assert_eq "per recipient: the message is accepted for the others" "eom continue" "$(line eom)"
assert_eq "per recipient: one header per warning (sender, recipient)" "2" \
	"$(grep -c '^X-MXSane: mx_cname' <<<"$HEADERS")"

# ---- per-message state: a header belongs to its message, never to the next one on the
# same connection, whether the first ended with end of message or was aborted (RSET)
session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@mx-cname.mxs.test>" eom=1 \
	"rcpts2=<carol@ok-mx.mxs.test>"
assert_eq "two messages: the first gets its header" \
	"header mx_cname mx-cname.mxs.test (MX target alias-host.mxs.test is an alias)" \
	"$(line header)"
assert_eq "two messages: the second is accepted without it" "2:data accept|0|" \
	"$(line 2:data)|$(grep -c '^2:eom' <<<"$OUT")|$(grep '^2:header' <<<"$OUT")"
assert_eq "two messages: one header on the wire" 1 "$(grep -c . <<<"$HEADERS")"
session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@mx-cname.mxs.test>" abort=1 \
	"rcpts2=<carol@ok-mx.mxs.test>"
assert_eq "aborted message: its warning is dropped" "abort|2:data accept|" \
	"$(grep -x abort <<<"$OUT")|$(line 2:data)|$HEADERS"
session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@mx-cname.mxs.test>" \
	"rcpts2=<carol@ok-mx.mxs.test>"
assert_eq "a new MAIL without end of message or abort starts a clean message" \
	"2:data accept|" "$(line 2:data)|$HEADERS"

# ---- skips decided by the engine: null sender, address literal, authenticated sender
session "$P" "from=<>" "rcpts=<bob@null-mx.mxs.test> <alice@ok-mx.mxs.test>"
assert_eq "null sender: not checked" "mail continue" "$(line mail)"
assert_eq "null sender: recipients still checked" "rcpt <bob@null-mx.mxs.test> replycode" \
	"$(line "rcpt <bob@null-mx.mxs.test>")"
session "$P" "from=<s@[192.0.2.1]>" "rcpts=<alice@ok-mx.mxs.test>"
assert_eq "address literal sender: not checked" "mail continue" "$(line mail)"

session "$P" "from=<s@null-mx.mxs.test>" "auth=alice" \
	"rcpts=<bob@null-mx.mxs.test> <carol@ok-mx.mxs.test>"
assert_eq "authenticated ({auth_authen}): null MX sender not checked" "mail continue" \
	"$(line mail)"
assert_eq "authenticated: recipient still checked" "rcpt <bob@null-mx.mxs.test> replycode" \
	"$(line "rcpt <bob@null-mx.mxs.test>")"
assert_eq "authenticated: the recipient's rejection" \
	"556 5.1.10 <bob@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$REPLIES"
session "$P" "from=<s@null-mx.mxs.test>" "auth="
assert_eq "empty {auth_authen} is not authenticated" "mail replycode" "$(line mail)"

# ---- reply text is escaped for libmilter: % doubled, within 980 bytes
session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<100%_sure@null-mx.mxs.test>"
assert_eq "a % in the address is doubled in the reply" \
	"556 5.1.10 <100%%_sure@null-mx.mxs.test>: null-mx.mxs.test does not accept mail (null MX)" \
	"$REPLIES"
LONG=$(printf 'x%.0s' $(seq 1 900))
session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<$LONG@null-mx.mxs.test>"
assert_eq "very long address: still rejected" "rcpt <$LONG@null-mx.mxs.test> replycode" \
	"$(line "rcpt <$LONG@null-mx.mxs.test>")"
assert_match "very long address: reply 556 5.1.10 within 980 bytes" \
	'^556 5\.1\.10 <x+\.\.\.>: null-mx\.mxs\.test does not accept mail \(null MX\)$' "$REPLIES"

# A long text (address cut at 300 by the engine, plus a 212-byte nonexistent domain) is cut so
# that the reply line fits RFC 5321's 512 octets with CRLF.
L50=$(printf 'a%.0s' $(seq 1 50))
NXD="$L50.$L50.$L50.$L50.mxs.test"
session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<$(printf 'y%.0s' $(seq 1 200))@$NXD>"
assert_match "long reply text: still 550 5.1.2 for the nonexistent domain" \
	"^550 5\.1\.2 <y+@a+\.a+\.\.\.>: $L50\.$L50\." "$REPLIES"
if [ "${#REPLIES}" -le 510 ] && [ "${#REPLIES}" -ge 500 ]; then
	ok "long reply text: cut to one 512-octet reply line (${#REPLIES} + CRLF)"
else
	not_ok "long reply text: cut to one 512-octet reply line" "${#REPLIES} bytes"
fi

# ---- the decision log line: queue ID, client, HELO, sender, recipient, verdict, reply
session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test>" qid=4Q1D2AB \
	"ip=198.51.100.23" "name=mail.client.test" "helo=helo.client.test"
LOGLINE=$(grep 'queue_id=4Q1D2AB' "$T_DIR/milter.log" | grep 'role=recipient')
for kv in 'queue_id=4Q1D2AB' 'verdict=null_mx' 'action=reject' 'role=recipient' \
	'domain=null-mx.mxs.test' 'reply="556 5.1.10"' 'mx="0 \."' 'client_addr=198.51.100.23' \
	'client_name=mail.client.test' 'helo=helo.client.test' 'sender=<s@ok-mx.mxs.test>' \
	'recipient=<bob@null-mx.mxs.test>' 'cache=(hit|miss)' 'ms=[0-9.]+' 'ttl=[0-9]+'; do
	assert_match "log line has $kv" "(^| )$kv( |$)" "$LOGLINE"
done
assert_eq "one log line per decision (sender + recipient)" 2 \
	"$(grep -c 'queue_id=4Q1D2AB verdict=' "$T_DIR/milter.log")"

# ---- monitor mode: every reject/tempfail becomes warn with a "would" header
conf "$T_DIR/monitor.conf" 'mode = "monitor";'
start_milter monitor "$T_DIR/monitor.conf" || not_ok "monitor instance starts" "see above"
session "$PORT" "from=<s@nonexistent.mxs.test>" \
	"rcpts=<bob@null-mx.mxs.test> <carol@mx-target-nx.mxs.test>" eom=1
assert_eq "monitor: nxdomain sender accepted" "mail continue" "$(line mail)"
assert_eq "monitor: null MX recipient accepted" "rcpt <bob@null-mx.mxs.test> continue" \
	"$(line "rcpt <bob@null-mx.mxs.test>")"
assert_eq "monitor: broken MX recipient accepted" \
	"rcpt <carol@mx-target-nx.mxs.test> continue" "$(line "rcpt <carol@mx-target-nx.mxs.test>")"
assert_match "monitor: header says the sender would be rejected" \
	'header nxdomain nonexistent\.mxs\.test \(.*would reject\)' "$OUT"
assert_match "monitor: header says the recipient would be rejected" \
	'header null_mx null-mx\.mxs\.test \(.*would reject\)' "$OUT"
assert_match "monitor: header says the broken MX would be tempfailed" \
	'header broken_mx mx-target-nx\.mxs\.test \(.*would tempfail\)' "$OUT"
assert_match "monitor: logged as warn, would reject, mode=monitor" \
	'verdict=null_mx action=warn would=reject mode=monitor' "$(cat "$T_DIR/monitor.log")"

# ---- skip.clients (address from the MAIL macros, or from CONNECT) and skip.domains
conf "$T_DIR/skip.conf" 'skip = { clients = [ "198.51.100.0/24", "2001:db8:5::/48" ];
         domains = [ "null-mx-a.mxs.test" ]; };'
start_milter skip "$T_DIR/skip.conf" || not_ok "skip instance starts" "see above"
session "$PORT" "ip=198.51.100.7" "from=<s@null-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test>"
assert_eq "skip.clients: sender not checked" "mail continue" "$(line mail)"
assert_eq "skip.clients: recipient not checked" "rcpt <bob@null-mx.mxs.test> continue" \
	"$(line "rcpt <bob@null-mx.mxs.test>")"
session "$PORT" "ip=2001:db8:5::25" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test>"
assert_eq "skip.clients: IPv6 client in the list not checked" \
	"rcpt <bob@null-mx.mxs.test> continue" "$(line "rcpt <bob@null-mx.mxs.test>")"
session "$PORT" "ip=IPv6:2001:db8:5::26" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test>"
assert_eq "skip.clients: Sendmail's IPv6:... form of {client_addr} not checked" \
	"rcpt <bob@null-mx.mxs.test> continue" "$(line "rcpt <bob@null-mx.mxs.test>")"
session "$PORT" "legacy=1" "ip=198.51.100.8" "from=<s@null-mx.mxs.test>"
assert_eq "skip.clients: older MTA, client from CONNECT, not checked" "mail continue" \
	"$(line mail)"
session "$PORT" "ip=192.0.2.10" "from=<s@ok-mx.mxs.test>" \
	"rcpts=<bob@null-mx.mxs.test> <carol@null-mx-a.mxs.test>"
assert_eq "skip.clients: other clients are checked" "rcpt <bob@null-mx.mxs.test> replycode" \
	"$(line "rcpt <bob@null-mx.mxs.test>")"
assert_eq "skip.domains: listed null MX domain not checked" \
	"rcpt <carol@null-mx-a.mxs.test> continue" "$(line "rcpt <carol@null-mx-a.mxs.test>")"
assert_match "skip.domains: logged as skipped with the reason" \
	'verdict=skipped action=accept .*reason="null-mx-a\.mxs\.test is in skip\.domains"' \
	"$(grep 'null-mx-a' "$T_DIR/skip.log")"

# ---- checks.sender = false: senders pass, recipients are still checked
conf "$T_DIR/nosender.conf" 'checks = { sender = false; };'
start_milter nosender "$T_DIR/nosender.conf" || not_ok "nosender instance starts" "see above"
session "$PORT" "from=<s@null-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test>"
assert_eq "checks.sender=false: null MX sender accepted" "mail continue" "$(line mail)"
assert_eq "checks.sender=false: recipient checked" "rcpt <bob@null-mx.mxs.test> replycode" \
	"$(line "rcpt <bob@null-mx.mxs.test>")"
conf "$T_DIR/norcpt.conf" 'checks = { recipient = false; };'
start_milter norcpt "$T_DIR/norcpt.conf" || not_ok "norcpt instance starts" "see above"
session "$PORT" "from=<s@null-mx.mxs.test>"
assert_eq "checks.recipient=false: sender still checked" "mail replycode" "$(line mail)"
session "$PORT" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test>"
assert_eq "checks.recipient=false: null MX recipient accepted" \
	"rcpt <bob@null-mx.mxs.test> continue" "$(line "rcpt <bob@null-mx.mxs.test>")"

# ---- a stalled engine thread: a check that needs DNS gives up after timeout_ms + margin
# with 451 4.4.3, never hangs the MTA and never rejects; a check the cache can answer is
# answered at once by the worker itself; once the engine runs again, all is well.
# The engine thread (named mxs-engine) alone is stopped with PTRACE_SEIZE + PTRACE_INTERRUPT.
STALL_SECS=6
"$PY" - "$MAIN_PID" "$STALL_SECS" >"$T_DIR/stall.out" 2>&1 <<'EOF' &
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid, secs = int(sys.argv[1]), float(sys.argv[2])
tid = None
for t in os.listdir("/proc/%d/task" % pid):
    with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
        if f.read().strip() == "mxs-engine":
            tid = int(t)
if tid is None:
    print("no thread named mxs-engine", flush=True)
    sys.exit(2)
if libc.ptrace(0x4206, tid, None, None) != 0:  # PTRACE_SEIZE
    print("ptrace unavailable: errno %d" % ctypes.get_errno(), flush=True)
    sys.exit(3)
libc.ptrace(0x4207, tid, None, None)  # PTRACE_INTERRUPT
os.waitpid(tid, 0x40000000)  # __WALL
print("stopped", flush=True)
time.sleep(secs)
libc.ptrace(17, tid, None, None)  # PTRACE_DETACH
print("resumed", flush=True)
EOF
STALL=$!
track_pid "$STALL"
for i in $(seq 50); do
	grep -q . "$T_DIR/stall.out" && break
	sleep 0.1
done
if grep -q '^stopped' "$T_DIR/stall.out"; then
	# ok-mx.mxs.test is in the cache: answered by the worker, the engine thread not needed
	session "$P" "from=<s@ok-mx.mxs.test>"
	assert_eq "engine stalled: a sender the cache knows is still accepted" "mail continue" \
		"$(line mail)"
	[ "$MS" -lt 1000 ] && ok "engine stalled: ... at once ($MS ms)" ||
		not_ok "engine stalled: cached answer at once" "$MS ms"
	# a domain never asked before needs the engine thread's DNS: the worker gives up
	decided() { grep -c 'role=sender domain=stalled\.mxs\.test' "$T_DIR/milter.log"; }
	N0=$(decided)
	session "$P" "from=<s@stalled.mxs.test>"
	assert_eq "engine stalled: MAIL tempfails instead of hanging" "mail replycode" \
		"$(line mail)"
	assert_eq "engine stalled: reply 451 4.4.3, never a rejection" \
		"451 4.4.3 <s@stalled.mxs.test>: the MX check did not finish in time, try again later" \
		"$REPLIES"
	if [ "$MS" -ge "$BUDGET" ] && [ "$MS" -lt $((BUDGET + 2000)) ]; then
		ok "engine stalled: answered after timeout_ms + margin ($MS ms)"
	else
		not_ok "engine stalled: answered after timeout_ms + margin" "$MS ms"
	fi
	assert_match "engine stalled: the timeout is logged as a decision" \
		'verdict=dns_error action=tempfail role=sender reply="451 4.4.3".*did not finish in time' \
		"$(tail -n 3 "$T_DIR/milter.log")"
	wait "$STALL"
	sleep 0.5
	assert_eq "engine resumed: the abandoned check is still decided (and freed)" \
		$((N0 + 1)) "$(decided)"
	session "$P" "from=<s@ok-mx.mxs.test>" "rcpts=<bob@null-mx.mxs.test>"
	assert_eq "engine resumed: checks work again" "rcpt <bob@null-mx.mxs.test> replycode" \
		"$(line "rcpt <bob@null-mx.mxs.test>")"
else
	echo "# SKIP engine stall: $(cat "$T_DIR/stall.out")"
fi

# ---- every instance stops cleanly on SIGTERM (libmilter notices within 5 s) and, in the
# sanitizer build, without findings
kill -TERM "${INSTANCES[@]}"
for pid in "${INSTANCES[@]}"; do
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	wait "$pid"
	assert_eq "SIGTERM: instance $pid exits with status 0" 0 "$?"
done
for f in "$T_DIR"/*.log; do
	if grep -qE 'Sanitizer|runtime error|LeakSanitizer' "$f"; then
		not_ok "no sanitizer findings in ${f##*/}" "$(grep -m3 -E 'Sanitizer|runtime error' "$f")"
	fi
done
finish

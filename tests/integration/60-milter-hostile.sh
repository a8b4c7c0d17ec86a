#!/usr/bin/env bash
# 60-milter-hostile.sh - hostile SMTP input through miltertest against the real mxsane-milter:
#   - 1,000 recipients in one transaction: each answered, the bad ones (null MX, nxdomain)
#     rejected one by one with their own reply, the good ones accepted, the message accepted,
#     within a sane total time, one decision logged per recipient;
#   - 1 KiB sender and recipient addresses, a 1 KiB HELO name;
#   - malformed addresses, as recipients and as senders: unbalanced angle brackets, square
#     brackets and quotes, control characters, CR/LF inside, empty, only "<", only "@", invalid
#     UTF-8, a 300-octet label, a domain over 255 octets, empty labels;
#   - more warnings in one message than X-MXSane headers kept (32): the cap is logged once
#     per message, not once per recipient past it;
# and for all of it: never a crash (the process stays up and answers a normal session after
# each step), never a 5xx unless the domain really is permanently unable to receive mail (null
# MX, nonexistent), and every reply line on the wire well-formed: "[45]DD [45].D.D text", the
# enhanced code of the same class as the SMTP code, printable ASCII only, at most 512 octets.
# Replies are read off the wire by a recording proxy (miltertest only says SMFIR_REPLYCODE).
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_bin mxsane-milter
need_cmd miltertest
MILTER="$BUILD_DIR/mxsane-milter"
LUA="$MXS_TOP/tests/milter/hostile.lua"
MANY_LIMIT_MS=${MANY_LIMIT_MS:-30000} # 1,000 recipients (250 distinct nxdomain lookups)

start_knot || { not_ok "knotd starts" "see the log above"; finish; }
CONF="$T_DIR/mxsane.conf"
echo "resolver = { servers = [ \"127.0.0.1:$KNOT_PORT\" ]; timeout_ms = 2000; };" >"$CONF"
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)

start_on_free_port milter "$MILTER" -f "${USER_ARGS[@]}" -c "$CONF" -p "inet:{PORT}@127.0.0.1" ||
	{ not_ok "mxsane-milter starts" "$(cat "$T_DIR/milter.log")"; finish; }
PORT=$BG_PORT MPID=$BG_PID

# Recording proxy: every packet the milter sends, "CMD HEXDATA" per line, in $WIRE.
WIRE="$T_DIR/wire.log"
: >"$WIRE"
PPORT=$(free_port)
start_bg proxy "$PY" -c '
import socket, struct, sys, threading
lport, tport, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
log = open(path, "a", buffering=1)
def pump(src, dst, record):
    buf = b""
    try:
        while True:
            d = src.recv(65536)
            if not d:
                break
            if record:
                buf += d
                while len(buf) >= 4:
                    n = struct.unpack(">I", buf[:4])[0]
                    if len(buf) < 4 + n:
                        break
                    pkt, buf = buf[4:4 + n], buf[4 + n:]
                    log.write("%s %s\n" % (chr(pkt[0]), pkt[1:].hex()))
            dst.sendall(d)
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
while True:
    c, _ = ls.accept()
    m = socket.create_connection(("127.0.0.1", tport))
    threading.Thread(target=pump, args=(c, m, False), daemon=True).start()
    threading.Thread(target=pump, args=(m, c, True), daemon=True).start()
' "$PPORT" "$PORT" "$WIRE"
wait_port "$PPORT" || { not_ok "proxy starts" "$(cat "$T_DIR/proxy.log")"; finish; }

hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }

# session VAR=VALUE...: one hostile.lua session through the proxy; OUT, RC, MS, REPLIES (the
# reply lines the milter sent in this session, decoded, one per line; NUL removed).
session() {
	local before t0 a args=(-D "sock=inet:$PPORT@127.0.0.1")
	for a in "$@"; do args+=(-D "$a"); done
	before=$(wc -l <"$WIRE")
	t0=$(now_ms)
	OUT=$(timeout -k 5 120 miltertest -s "$LUA" "${args[@]}" 2>"$T_DIR/mt.err")
	RC=$?
	MS=$(($(now_ms) - t0))
	[ "$RC" = 0 ] || OUT="$OUT
rc=$RC: $(cat "$T_DIR/mt.err")"
	sleep 0.05 # the proxy logs before forwarding; this only covers the last write's flush
	REPLIES=$(tail -n +"$((before + 1))" "$WIRE" | awk '$1 == "y" { print $2 }' |
		"$PY" -c '
import sys
for l in sys.stdin:
    sys.stdout.write(bytes.fromhex(l.strip()).rstrip(b"\0").decode("latin-1") + "\n")')
}

# well_formed NAME: every reply line of the session is well formed.
well_formed() {
	local bad
	bad=$(printf '%s\n' "$REPLIES" | LC_ALL=C awk '
		$0 == "" { next }
		length($0) > 512 || $0 ~ /[^ -~]/ { print "bad octets/length: " $0; next }
		!/^[45][0-9][0-9] [45]\.[0-9][0-9]?[0-9]?\.[0-9][0-9]?[0-9]? [^ ]/ { print "bad shape: " $0; next }
		substr($0, 1, 1) != substr($0, 5, 1) { print "class mismatch: " $0 }' | head -3)
	assert_eq "$1: every reply well-formed and class-consistent" "" "$bad"
}

# alive NAME: the milter still runs and answers a normal session.
alive() {
	local o
	if ! kill -0 "$MPID" 2>/dev/null; then
		not_ok "$1: the milter is still running" "$(tail -n 5 "$T_DIR/milter.log")"
		return
	fi
	o=$(timeout -k 5 60 miltertest -s "$LUA" -D "sock=inet:$PORT@127.0.0.1" \
		-D "rcptfile=$T_DIR/normal" 2>&1 | tr '\n' ' ')
	assert_eq "$1: still up, a normal session afterwards is answered" \
		"helo continue mail continue rcpt 1 continue rcpt 2 replycode data accept done " "$o"
}
printf '%s\n%s\n' "$(hex '<bob@ok-mx.mxs.test>')" "$(hex '<bob@null-mx.mxs.test>')" >"$T_DIR/normal"

# ---- 1,000 recipients in one transaction
"$PY" - >"$T_DIR/many" 2>"$T_DIR/many.expect" <<'PYEOF'
import sys
for i in range(1, 1001):
    d, e = [("ok-mx.mxs.test", "continue"), ("null-mx.mxs.test", "replycode"),
            ("nx-%d.mxs.test" % (i // 4), "replycode"), ("implicit-a.mxs.test", "continue")][i % 4]
    print(("<u%d@%s>" % (i, d)).encode().hex())
    sys.stderr.write("rcpt %d %s\n" % (i, e))
PYEOF
session "rcptfile=$T_DIR/many" qid=MANY1000
assert_eq "1,000 recipients: session completed" 0 "$RC"
assert_eq "1,000 recipients: each answered, bad ones rejected, good ones accepted" "" \
	"$(diff <(grep '^rcpt ' <<<"$OUT") "$T_DIR/many.expect" | head -5)"
assert_eq "1,000 recipients: the message is accepted for the good ones" "data accept" \
	"$(grep '^data' <<<"$OUT")"
assert_eq "1,000 recipients: 500 rejections on the wire" 500 "$(grep -c . <<<"$REPLIES")"
assert_eq "1,000 recipients: 250 null MX rejections, each with its own address" 250 \
	"$(grep -E '^556 5\.1\.10 <u[0-9]+@null-mx\.mxs\.test>: ' <<<"$REPLIES" | sort -u | wc -l)"
assert_eq "1,000 recipients: 250 nxdomain rejections, each with its own address" 250 \
	"$(grep -E '^550 5\.1\.2 <u[0-9]+@nx-[0-9]+\.mxs\.test>: ' <<<"$REPLIES" | sort -u | wc -l)"
well_formed "1,000 recipients"
if [ "$MS" -lt "$MANY_LIMIT_MS" ]; then
	ok "1,000 recipients answered in $MS ms (limit $MANY_LIMIT_MS)"
else
	not_ok "1,000 recipients within $MANY_LIMIT_MS ms" "$MS ms"
fi
echo "# 1,000 recipients: $MS ms"
assert_eq "1,000 recipients: one decision logged per recipient" 1000 \
	"$(grep -c 'queue_id=MANY1000 .*role=recipient' "$T_DIR/milter.log")"
alive "after 1,000 recipients"

# ---- 1 KiB addresses and HELO name
K=$(printf 'x%.0s' $(seq 1000))
LBL=$(printf 'a%.0s' $(seq 62))
LONGDOM="$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL.$LBL"
printf '%s\n' "$(hex "<$K@null-mx.mxs.test>")" "$(hex "<$K@ok-mx.mxs.test>")" \
	"$(hex "<bob@$LONGDOM>")" >"$T_DIR/long"
# (miltertest itself refuses a recipient of 2 KiB: "Input overflow")
session "helo=$(hex "$K.helo.test")" "from=$(hex "<$K@ok-mx.mxs.test>")" "rcptfile=$T_DIR/long"
assert_eq "1 KiB HELO and sender: accepted (ok domain)" "helo continue|mail continue" \
	"$(grep -E '^(helo|mail) ' <<<"$OUT" | paste -sd '|')"
assert_eq "1 KiB local part at a null MX domain: rejected (a real verdict)" "rcpt 1 replycode" \
	"$(grep '^rcpt 1 ' <<<"$OUT")"
assert_eq "1 KiB local part at an ok domain, 1 KiB domain: accepted" \
	"rcpt 2 continue|rcpt 3 continue" "$(grep -E '^rcpt [23] ' <<<"$OUT" | paste -sd '|')"
assert_match "1 KiB local part: the reply carries the 556 and stays within bounds" \
	'^556 5\.1\.10 ' "$REPLIES"
well_formed "1 KiB addresses"
session "from=$(hex "<$K@null-mx.mxs.test>")"
assert_eq "1 KiB sender at a null MX domain: rejected at MAIL" "mail replycode" "$(grep '^mail' <<<"$OUT")"
assert_match "... with 550 5.7.27" '^550 5\.7\.27 ' "$REPLIES"
well_formed "1 KiB sender"
alive "after 1 KiB addresses"

# ---- malformed addresses: each case "LABEL<TAB>HEX<TAB>EXPECTED" where EXPECTED is continue
# (unparseable: the MTA's own syntax checks decide, mxsane skips it) or a reply code prefix
# (the domain parses and really cannot receive mail).
"$PY" - >"$T_DIR/cases" <<'PYEOF'
cases = [
    ("unbalanced < ", b"<bob@null-mx.mxs.test", "continue"),
    ("unbalanced >", b"bob@null-mx.mxs.test>", "continue"),
    ("unbalanced quote", b'<"bob@null-mx.mxs.test>', "continue"),
    ("quote at the end of the local part", b'<bob"@null-mx.mxs.test>', "continue"),
    ("unbalanced [", b"<bob@[192.0.2.1>", "continue"),
    ("unbalanced ]", b"<bob@192.0.2.1]>", "continue"),
    ("control character in the local part", b"<bob\x01@null-mx.mxs.test>", "continue"),
    ("control character in the domain", b"<bob@null-mx\x07.mxs.test>", "continue"),
    ("ESC sequence", b"<bob\x1b[31m@null-mx.mxs.test>", "continue"),
    ("DEL", b"<bob\x7f@null-mx.mxs.test>", "continue"),
    ("CR LF in the local part", b"<bob\r\n@null-mx.mxs.test>", "continue"),
    ("CR LF and a header in the domain", b"<bob@null-mx.mxs.test\r\nX-Forged: yes>", "continue"),
    ("bare LF", b"<bob@null-mx.mxs.test\n>", "continue"),
    ("bare CR", b"<bob@null-mx.mxs.test\r>", "continue"),
    ("empty", b"", "continue"),
    ("only <", b"<", "continue"),
    ("only >", b">", "continue"),
    ("only @", b"@", "continue"),
    ("<@>", b"<@>", "continue"),
    ("<>", b"<>", "continue"),
    ("empty domain", b"<bob@>", "continue"),
    ("empty local part", b"<@null-mx.mxs.test>", "continue"),
    ("two @", b"<bob@x@null-mx.mxs.test>", "any"),
    ("empty label", b"<bob@null-mx..mxs.test>", "continue"),
    ("leading dot", b"<bob@.null-mx.mxs.test>", "continue"),
    ("hyphen label", b"<bob@-x.mxs.test>", "continue"),
    ("invalid UTF-8 in the domain", b"<bob@\xc3\x28.mxs.test>", "continue"),
    ("overlong UTF-8 in the domain", b"<bob@\xc0\xae.mxs.test>", "continue"),
    ("lone continuation byte in the domain", b"<bob@\x80null-mx.mxs.test>", "continue"),
    ("invalid UTF-8 in the local part, null MX domain", b"<\xff\xfe@null-mx.mxs.test>", "556 5.1.10"),
    ("300-octet label", b"<bob@" + b"a" * 300 + b".mxs.test>", "continue"),
    ("64-octet label", b"<bob@" + b"a" * 64 + b".mxs.test>", "continue"),
    ("domain over 255 octets", b"<bob@" + b".".join([b"b" * 63] * 5) + b">", "continue"),
    ("percent signs", b"<%s%n%x@null-mx.mxs.test>", "556 5.1.10"),
    ("backslash and quotes in a quoted local part", b'<"a\\"b"@null-mx.mxs.test>', "556 5.1.10"),
    ("source route only", b"<@null-mx.mxs.test:>", "continue"),
    ("spaces", b"< bob @ null-mx.mxs.test >", "any"),
    ("only spaces", b"   ", "continue"),
    ("tab", b"<bob\t@null-mx.mxs.test>", "continue"),
    ("nonexistent, then garbage", b"<bob@nonexistent.mxs.test>\x01", "any"),
]
for label, a, e in cases:
    print("%s|%s|%s" % (label, a.hex(), e))
PYEOF
NCASES=$(wc -l <"$T_DIR/cases")
cut -d'|' -f2 "$T_DIR/cases" >"$T_DIR/malformed"
session "rcptfile=$T_DIR/malformed"
assert_eq "malformed recipients ($NCASES in one transaction): session completed" 0 "$RC"
n=0
bad=
while IFS='|' read -r label h want; do
	n=$((n + 1))
	got=$(grep -m1 "^rcpt $n " <<<"$OUT" | cut -d' ' -f3)
	case $want in
	continue) [ "$got" = continue ] || bad+="[$label: $got] " ;;
	any) [ "$got" = continue ] || [ "$got" = replycode ] || bad+="[$label: $got] " ;;
	*) [ "$got" = replycode ] || bad+="[$label: $got, wanted $want] " ;;
	esac
done <"$T_DIR/cases"
assert_eq "malformed recipients: each answered as expected" "" "$bad"
# a 5xx only for a real permanent verdict: every 5xx names a null-MX or nonexistent domain
assert_eq "malformed recipients: a 5xx only for null MX or nonexistent domains" "" \
	"$(grep '^5' <<<"$REPLIES" | grep -vE '^(556 5\.1\.10 .*: null-mx\.mxs\.test does not accept mail|550 5\.1\.2 .*: nonexistent\.mxs\.test does not exist)' | head -3)"
assert_eq "malformed recipients: one reply line per rejected recipient" \
	"$(grep -c '^rcpt [0-9]* replycode' <<<"$OUT")" "$(grep -c . <<<"$REPLIES")"
well_formed "malformed recipients"
alive "after malformed recipients"

# the same octets as senders (one session each: a rejected sender ends the transaction)
bad=
badw=
n=0
while IFS='|' read -r label h want; do
	n=$((n + 1))
	session "from=$h"
	got=$(grep -m1 '^mail ' <<<"$OUT" | cut -d' ' -f2)
	[ "$RC" = 0 ] || bad+="[$label: rc=$RC] "
	case $want in
	continue) [ "$got" = continue ] || bad+="[$label: $got] " ;;
	any) [ "$got" = continue ] || [ "$got" = replycode ] || bad+="[$label: $got] " ;;
	*) [ "$got" = replycode ] && [[ $REPLIES == "550 5.7.27 "* ]] || bad+="[$label: $got $REPLIES] " ;;
	esac
	w=$(printf '%s\n' "$REPLIES" | LC_ALL=C awk '$0 != "" && (length($0) > 512 || $0 ~ /[^ -~]/ ||
		!/^[45][0-9][0-9] [45]\.[0-9][0-9]?[0-9]?\.[0-9][0-9]?[0-9]? [^ ]/ || substr($0, 1, 1) != substr($0, 5, 1))')
	[ -z "$w" ] || badw+="[$label: $w] "
	if grep '^5' <<<"$REPLIES" | grep -qvE '^550 5\.7\.27 .*: null-mx\.mxs\.test does not accept mail'; then
		badw+="[$label: 5xx $REPLIES] "
	fi
done <"$T_DIR/cases"
assert_eq "malformed senders ($n sessions): each answered as expected" "" "$bad"
assert_eq "malformed senders: replies well-formed, 5xx only for the real null MX" "" "$badw"
alive "after malformed senders"

# ---- HELO names: 1 KiB, CR/LF, control characters, invalid UTF-8, empty
bad=
for h in "$K" $'helo\r\nX-Forged: yes' $'\x01\x02\x1b[0m' $'\xff\xfe\xc3\x28' "" "[" '"' "%s%n"; do
	session "helo=$(hex "$h")" "rcptfile=$T_DIR/normal"
	[ "$(tr '\n' ' ' <<<"$OUT")" = "helo continue mail continue rcpt 1 continue rcpt 2 replycode data accept done " ] ||
		bad+="[$(printf '%q' "$h" | cut -c1-40): $(tr '\n' ' ' <<<"$OUT")] "
done
assert_eq "hostile HELO names: accepted, the checks after them unaffected" "" "$bad"
well_formed "hostile HELO names"
alive "at the end"

kill -0 "$MPID" 2>/dev/null && ok "the milter never exited" || not_ok "the milter never exited" "gone"

# ---- more warnings than headers: the cap is logged once per message, not per recipient.
# In monitor mode each nonexistent domain is a warning with its own X-MXSane header.
echo "mode = \"monitor\";" >>"$CONF"
start_on_free_port monitor "$MILTER" -f "${USER_ARGS[@]}" -c "$CONF" -p "inet:{PORT}@127.0.0.1" ||
	{ not_ok "monitor-mode milter starts" "$(cat "$T_DIR/monitor.log")"; finish; }
MONPORT=$BG_PORT
for i in $(seq 1 200); do hex "<u@capnx-$i.mxs.test>"; echo; done >"$T_DIR/capped"
capped=
for m in 1 2; do
	o=$(timeout -k 5 120 miltertest -s "$LUA" -D "sock=inet:$MONPORT@127.0.0.1" \
		-D "rcptfile=$T_DIR/capped" -D "qid=CAP$m" 2>&1)
	capped+="$(grep -c '^rcpt [0-9]* continue$' <<<"$o") $(grep '^eom' <<<"$o");"
done
assert_eq "200 warned recipients, twice: each let through, both messages completed" \
	"200 eom continue;200 eom continue;" "$capped"
assert_eq "header cap: one warning per message (2), not one per recipient past the cap" \
	"2 CAP1 CAP2" "$(grep -c 'cannot keep header' "$T_DIR/monitor.log") $(grep -o \
	'queue_id=CAP[0-9]*: cannot keep header' "$T_DIR/monitor.log" | cut -d= -f2 | cut -d: -f1 |
	tr '\n' ' ' | sed 's/ $//')"
if grep -qE 'Sanitizer|runtime error' "$T_DIR/milter.log"; then
	not_ok "no sanitizer findings" "$(grep -m3 -E 'Sanitizer|runtime error' "$T_DIR/milter.log")"
fi
finish

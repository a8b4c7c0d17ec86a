#!/usr/bin/env bash
# 26-gates-agree.sh - the skip and check gates are the engine's alone: mxsane-policyd and
# mxsane-milter skip the same checks and log them alike.
#
# With checks.sender = false, a sender in skip.domains or a client in skip.clients, both
# daemons must log one decision line "verdict=skipped action=accept role=sender" with the
# same reason, and answer as if the check had passed (policy: DUNNO; milter: continue).  No
# DNS is needed: every check here is skipped (the recipients' domain is in skip.domains), so
# the resolver points at a port where nothing answers.
. "$(dirname "$0")/../lib/common.sh"

need_bin mxsane-policyd mxsane-milter
need_cmd miltertest
LUA="$MXS_TOP/tests/milter/session.lua"

# daemons NAME CONFIG-BODY: one policyd and one milter with that configuration
declare -A PD_PORT=() MT_PORT=()
daemons() {
	cat >"$T_DIR/$1.conf" <<EOC
resolver = { servers = [ "127.0.0.1:9" ]; timeout_ms = 1000; };
log = { format = "kv"; };
$2
EOC
	start_on_free_port "policyd-$1" "$BUILD_DIR/mxsane-policyd" -f -u root -c "$T_DIR/$1.conf" \
		-l "inet:127.0.0.1:{PORT}" || { not_ok "mxsane-policyd ($1) starts" "see above"; finish; }
	PD_PORT[$1]=$BG_PORT
	start_on_free_port "milter-$1" "$BUILD_DIR/mxsane-milter" -f -u root -c "$T_DIR/$1.conf" \
		-p "inet:{PORT}@127.0.0.1" || { not_ok "mxsane-milter ($1) starts" "see above"; finish; }
	MT_PORT[$1]=$BG_PORT
}

daemons nosender 'checks = { sender = false; }; skip = { domains = [ "hosted.test" ]; };'
daemons skipdom 'skip = { domains = [ "hosted.test", ".partner.test" ]; };'
daemons skipcli 'skip = { domains = [ "hosted.test" ]; clients = [ "192.0.2.0/24" ]; };'

# policy NAME SENDER CLIENT: one request at RCPT; prints the action line
policy() {
	"$PY" - "${PD_PORT[$1]}" "$2" "$3" <<'EOPY'
import socket, sys
port, sender, client = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=%s\n"
           "client_name=client.test\nhelo_name=helo.test\nsender=%s\n"
           "recipient=user@hosted.test\n\n" % (client, sender)).encode())
buf = b""
while not buf.endswith(b"\n\n"):
    d = s.recv(4096)
    if not d:
        break
    buf += d
print(buf.decode().strip())
EOPY
}

# milter NAME SENDER CLIENT: MAIL FROM and one RCPT through miltertest; prints its lines
milter() {
	timeout -k 5 30 miltertest -s "$LUA" -D "sock=inet:${MT_PORT[$1]}@127.0.0.1" \
		-D "from=<$2>" -D "ip=$3" -D "rcpts=<user@hosted.test>" 2>&1
}

# the sender's decision line in LOG naming SENDER, reduced to the fields that must agree
sender_line() { # log sender
	grep -F "role=sender" "$1" | grep -F -- "$2" | tail -n 1 |
		grep -oE '(verdict|action|role)=[a-z_]+|reason=("[^"]*"|[^ ]*)' | tr '\n' ' '
}

# case NAME SENDER CLIENT WANT-REASON
check_case() {
	local name=$1 sender=$2 client=$3 want=$4 p m pl ml
	p=$(policy "$name" "$sender" "$client")
	m=$(milter "$name" "$sender" "$client")
	assert_eq "$name: policyd answers DUNNO" "action=DUNNO" "$p"
	assert_match "$name: milter lets MAIL through" '^mail continue' "$m"
	sleep 0.3 # the log lines are written by now; give stderr a moment
	pl=$(sender_line "$T_DIR/policyd-$name.log" "$sender")
	ml=$(sender_line "$T_DIR/milter-$name.log" "$sender")
	assert_match "$name: policyd logs the skipped sender" \
		"verdict=skipped action=accept role=sender reason=\"?$want" "$pl"
	assert_eq "$name: milter logs it alike" "$pl" "$ml"
}

check_case nosender bob@nullmx.example 198.51.100.7 "sender checks are disabled"
check_case skipdom bob@mail.partner.test 198.51.100.7 "mail.partner.test is in skip.domains"
check_case skipcli bob@nullmx.example 192.0.2.44 "client 192.0.2.44 is in skip.clients"

finish

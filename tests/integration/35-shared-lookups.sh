#!/usr/bin/env bash
# Concurrent checks share DNS work: many clients asking about the same slow domain at once
# cause one MX query, not one per client; domains that share MX hosts share the hosts'
# address lookups; and a second check of a name is answered from the record-set cache.
# Driven through the real mxsane-policyd; queries are counted in faultdns's log.
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
start_faultdns
start_knot
port=$(free_port)
cat >"$T_DIR/c.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$FAULT_PORT" ]; timeout_ms = 3000; };
policy = { listen = "inet:127.0.0.1:$port"; };
EOC
start_bg policyd "$BUILD/mxsane-policyd" -f -u root -c "$T_DIR/c.conf"
wait_port "$port"

# 20 clients at once, each asking about a sender at slow700.fault.test (answer after 700 ms)
"$PY" - "$port" >"$T_DIR/clients.out" <<'EOP'
import socket, sys, threading
port = int(sys.argv[1]); out = [None] * 20
def ask(i):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\nsender=u%d@slow700.fault.test\n"
               "recipient=r@ok.fault.test\n\n" % i).encode())
    data = b""
    while not data.endswith(b"\n\n"):
        b = s.recv(4096)
        if not b: break
        data += b
    out[i] = data.decode().splitlines()[0] if data else "(closed)"
ts = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
[t.start() for t in ts]; [t.join() for t in ts]
print("\n".join(out))
EOP
assert_eq "20 concurrent clients all answered DUNNO" 20 "$(grep -c '^action=DUNNO$' "$T_DIR/clients.out")"
n=$(grep -c 'MX slow700\.fault\.test' "$T_DIR/faultdns.log")
assert_eq "one MX query for 20 concurrent checks of the same domain" 1 "$n"

# asked again: from the cache, no new query
printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=x@slow700.fault.test\nrecipient=r@ok.fault.test\n\n' |
	"$PY" -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=10); s.sendall(sys.stdin.buffer.read()); print(s.recv(4096).decode().splitlines()[0])' "$port" >"$T_DIR/again.out"
assert_eq "repeat: answered" "action=DUNNO" "$(cat "$T_DIR/again.out")"
assert_eq "repeat: no new MX query (cache)" 1 "$(grep -c 'MX slow700\.fault\.test' "$T_DIR/faultdns.log")"
# the MX host good.fault.test (shared by slow700 and ok) was asked once for A
assert_eq "shared MX host: one A query" 1 "$(grep -c ' A good\.fault\.test' "$T_DIR/faultdns.log")"
finish

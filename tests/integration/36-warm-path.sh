#!/usr/bin/env bash
# The warm path of the real mxsane-policyd, observed at the DNS server (faultdns's log):
#  - a domain whose most preferred MX host is already cached and usable is decided without
#    looking up its other hosts (ok: nothing they hold can make it worse);
#  - the judgment of a cached address set (and the MX set's memo of its first host) follows
#    the configuration: a reload that makes an address bogus changes the verdict of a fully
#    cached domain at once, without asking DNS again, and a reload back makes it usable again;
#  - so does skip.clients, which the engine keeps the answer of for the last client.
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
start_faultdns
port=$(free_port)
write_conf() { # extra lines
	cat >"$T_DIR/c.conf" <<-EOC
		resolver = { servers = [ "127.0.0.1:$FAULT_PORT" ]; timeout_ms = 3000; };
		policy = { listen = "inet:127.0.0.1:$port"; };
		$1
	EOC
}
write_conf ""
"$BUILD/mxsane-policyd" -f -u root -c "$T_DIR/c.conf" </dev/null >/dev/null 2>"$T_DIR/policyd.log" &
pid=$!
track_pid "$pid"
wait_port "$port" || { cat "$T_DIR/policyd.log"; exit 1; }

ask() { # sender domain [client address] -> first reply line
	printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=u@%s\nrecipient=\nclient_address=%s\n\n' \
		"$1" "${2:-192.0.2.1}" |
		"$PY" -c 'import socket,sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.stdin.buffer.read())
d = b""
while not d.endswith(b"\n\n"):
    b = s.recv(4096)
    if not b: break
    d += b
print(d.decode().splitlines()[0] if d else "(closed)")' "$port"
}
count() { grep -c -- "$1" "$T_DIR/faultdns.log"; }

# ok.fault.test: MX 10 good.fault.test -> good's A is cached from now on
assert_eq "ok.fault.test accepted" "action=DUNNO" "$(ask ok.fault.test)"
assert_eq "good.fault.test asked once for A" 1 "$(count ' A good\.fault\.test')"
# mxgood-and-timeout: MX 10 good (cached, usable), MX 20 timeout.fault.test (never answers)
assert_eq "mxgood-and-timeout accepted" "action=DUNNO" "$(ask mxgood-and-timeout.fault.test)"
assert_eq "its MX asked" 1 "$(count 'MX mxgood-and-timeout\.fault\.test')"
assert_eq "its less preferred host not looked up (A)" 0 "$(count ' A timeout\.fault\.test')"
assert_eq "its less preferred host not looked up (AAAA)" 0 "$(count ' AAAA timeout\.fault\.test')"
grep -q 'domain=mxgood-and-timeout.fault.test mx="10 good.fault.test,20 timeout.fault.test" ' \
	"$T_DIR/policyd.log" && ok "log: both hosts listed, the unexamined one not marked unusable" ||
	not_ok "log line of mxgood-and-timeout" "$(grep mxgood "$T_DIR/policyd.log")"
# ok.fault.test again, twice: all from the cache (the second answer from the MX set's memo)
assert_eq "ok.fault.test again: accepted" "action=DUNNO" "$(ask ok.fault.test)"
assert_eq "ok.fault.test a third time: accepted" "action=DUNNO" "$(ask ok.fault.test)"
# queries for mail domains (the recursion check each reload makes, ". NS", is not one)
lookups() { grep 'faultdns: ' "$T_DIR/faultdns.log" | grep -vc ' NS \. -> root'; }
queries=$(lookups)

# the same cached addresses, now bogus by configuration: a reload changes the verdict
reload_and_wait() { # n-th reload
	kill -HUP "$pid"
	for _ in $(seq 100); do
		[ "$(grep -c 'configuration reloaded' "$T_DIR/policyd.log")" -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
write_conf 'bogus_networks = [ "5.6.8.0/24", "2a00:1450:4001::/48" ];'
reload_and_wait 1 || not_ok "reload 1" "$(tail -3 "$T_DIR/policyd.log")"
assert_match "after the reload, good's cached addresses are bogus: rejected" \
	'^action=450 4\.1\.8 .*ok\.fault\.test has no usable mail server' "$(ask ok.fault.test)"
write_conf ""
reload_and_wait 2 || not_ok "reload 2" "$(tail -3 "$T_DIR/policyd.log")"
assert_eq "reload back to the built-in list: accepted again" "action=DUNNO" "$(ask ok.fault.test)"
# both verdicts came from the cache: the AAAA of good was asked once when its A turned
# bogus, nothing else
new=$(($(lookups) - queries))
[ "$new" -le 1 ] && ok "the verdicts changed without asking DNS again ($new new queries)" ||
	not_ok "no new DNS queries for cached data" "$new new: $(tail -n 5 "$T_DIR/faultdns.log")"
assert_eq "each reload asked the server once whether it recurses" 3 \
	"$(grep -c ' NS \. -> root' "$T_DIR/faultdns.log")"

# skip.clients on reload, for the same client as the last check
assert_match "client 192.0.2.77: a nonexistent sender domain is rejected" '^action=550 5\.1\.8 ' \
	"$(ask nonexistent.fault.test 192.0.2.77)"
write_conf 'skip = { clients = [ "192.0.2.0/24" ]; };'
reload_and_wait 3 || not_ok "reload 3" "$(tail -3 "$T_DIR/policyd.log")"
assert_eq "after adding it to skip.clients: not checked" "action=DUNNO" \
	"$(ask nonexistent.fault.test 192.0.2.77)"
write_conf ""
reload_and_wait 4 || not_ok "reload 4" "$(tail -3 "$T_DIR/policyd.log")"
assert_match "after taking it out again: rejected" '^action=550 5\.1\.8 ' \
	"$(ask nonexistent.fault.test 192.0.2.77)"
finish

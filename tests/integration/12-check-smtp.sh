#!/usr/bin/env bash
# mxsane-check --smtp: after the DNS checks it connects to each usable MX target and reports
# the SMTP banner, or the failure.  Targets live on loopback (tests/zones/smtp.test.zone);
# bogus_networks is emptied so 127.0.0.0/8 counts as usable; only 127.0.0.x is contacted.
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
start_knot
port=$(free_port)
cat >"$T_DIR/mxsane.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
bogus_networks = [ ];
EOC
# A one-connection-at-a-time banner server (bounded: exits after 30 s).
/usr/bin/python3 - "$port" >"$T_DIR/banner.log" 2>&1 <<'EOP' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5); s.settimeout(1)
end = time.time() + 30
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.sendall(b"220 banner.smtp.test ESMTP test listener\r\n")
    c.settimeout(2)
    try:
        print(c.recv(100))
    except Exception:
        pass
    c.close()
EOP
track_pid $!
wait_port "$port"

out=$("$BUILD/mxsane-check" -c "$T_DIR/mxsane.conf" -j --smtp --smtp-port "$port" \
	--smtp-timeout 2000 listening.smtp.test)
rc=$?
assert_eq "listening target: exit 0" 0 "$rc"
field() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(eval(sys.argv[1]))' "$1"; }
assert_eq "listening target: verdict" ok "$(field 'd["verdict"]' <<<"$out")"
assert_eq "listening target: probe ok" True "$(field 'd["mx"][0]["smtp"][0]["ok"]' <<<"$out")"
assert_match "listening target: banner reported" '^220 banner\.smtp\.test ESMTP' \
	"$(field 'd["mx"][0]["smtp"][0]["banner"]' <<<"$out")"

out=$("$BUILD/mxsane-check" -c "$T_DIR/mxsane.conf" -j --smtp --smtp-port "$port" \
	--smtp-timeout 2000 refused.smtp.test)
assert_eq "refused target: probe failed" False "$(field 'd["mx"][0]["smtp"][0]["ok"]' <<<"$out")"
assert_match "refused target: reason" 'connect: Connection refused' \
	"$(field 'd["mx"][0]["smtp"][0]["error"]' <<<"$out")"

txt=$("$BUILD/mxsane-check" -c "$T_DIR/mxsane.conf" --smtp --smtp-port "$port" listening.smtp.test)
assert_match "text output shows the banner" "smtp 127\.0\.0\.1 port $port: 220 banner" "$txt"
# without --smtp nothing connects
before=$(grep -c . "$T_DIR/banner.log" || true)
"$BUILD/mxsane-check" -c "$T_DIR/mxsane.conf" -j listening.smtp.test >/dev/null
sleep 0.3
after=$(grep -c . "$T_DIR/banner.log" || true)
assert_eq "no connection without --smtp" "$before" "$after"
finish

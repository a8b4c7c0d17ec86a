#!/usr/bin/env bash
# mxsane-check --smtp: every usable address of every MX target is probed at once, within one
# overall timeout; banner, EHLO (STARTTLS offered or not), with --rcpt also MAIL FROM:<> and
# RCPT TO:, then QUIT, never DATA.  No target answering, or a target refusing the domain's
# mail while another takes it, is exit status 3.
#
# The test serves its own zone (knot) and runs SMTP listeners on loopback addresses, all on
# one port: 127.0.0.11 accepts everything (offers STARTTLS), 127.0.0.12 answers RCPT with 550,
# 127.0.0.13/16/17/18 accept the connection and never say anything, 127.0.0.14 sends its
# banner after 3 s, 127.0.0.15 has no listener (connection refused).  bogus_networks is
# emptied so that loopback counts as usable.
set -u
. "$MXS_TOP/tests/lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"
need_bin mxsane-check

mkdir -p "$T_DIR/zones"
cat >"$T_DIR/zones/smtp.test.zone" <<'EOZ'
$ORIGIN smtp.test.
@        600 IN SOA ns.smtp.test. hostmaster.smtp.test. 1 3600 900 604800 300
@       3600 IN NS  ns.smtp.test.
ns      3600 IN A   127.0.0.1
acc     3600 IN A   127.0.0.11
ref     3600 IN A   127.0.0.12
silent  3600 IN A   127.0.0.13
silent  3600 IN A   127.0.0.16
silent2 3600 IN A   127.0.0.17
silent2 3600 IN A   127.0.0.18
slow    3600 IN A   127.0.0.14
closed  3600 IN A   127.0.0.15
good       3600 IN MX 10 acc.smtp.test.
backupbad  3600 IN MX 10 acc.smtp.test.
backupbad  3600 IN MX 20 ref.smtp.test.
dead       3600 IN MX 10 silent.smtp.test.
dead       3600 IN MX 20 silent2.smtp.test.
dead       3600 IN MX 30 closed.smtp.test.
prefdown   3600 IN MX 10 silent.smtp.test.
prefdown   3600 IN MX 20 acc.smtp.test.
slowbanner 3600 IN MX 10 slow.smtp.test.
refused    3600 IN MX 10 closed.smtp.test.
nullmx     3600 IN MX 0 .
EOZ
KNOT_ZONES_DIR="$T_DIR/zones" start_knot || exit 1
cat >"$T_DIR/mxsane.conf" <<EOC
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 2000; };
bogus_networks = [ ];
EOC

# The listeners: one process, a thread per connection, every command logged (bounded: 60 s).
cat >"$T_DIR/listen.py" <<'EOP'
import socket, sys, threading, time
port = int(sys.argv[1])
modes = {"127.0.0.11": "accept", "127.0.0.12": "refuse", "127.0.0.13": "silent",
         "127.0.0.16": "silent", "127.0.0.17": "silent", "127.0.0.18": "silent",
         "127.0.0.14": "slow"}
log = open(sys.argv[2], "a", buffering=1)
def serve(c, mode, ip):
    c.settimeout(8)
    try:
        if mode == "silent":
            time.sleep(6); return
        if mode == "slow":
            time.sleep(3)
        c.sendall(b"220 %s.smtp.test ESMTP test listener\r\n" % mode.encode())
        f = c.makefile("rb")
        for line in f:
            cmd = line.decode("ascii", "replace").strip()
            log.write("%s %s\n" % (ip, cmd))
            verb = cmd.split(" ")[0].upper()
            if verb == "EHLO":
                tls = b"250-STARTTLS\r\n" if mode == "accept" else b""
                c.sendall(b"250-%s.smtp.test\r\n250-PIPELINING\r\n" % mode.encode() + tls +
                          b"250 8BITMIME\r\n")
            elif verb == "MAIL":
                c.sendall(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                if mode == "refuse":
                    c.sendall(b"550 5.1.1 <postmaster@backupbad.smtp.test>: Recipient address rejected: User unknown\r\n")
                else:
                    c.sendall(b"250 2.1.5 Ok\r\n")
            elif verb == "QUIT":
                c.sendall(b"221 2.0.0 Bye\r\n"); return
            else:
                c.sendall(b"502 5.5.2 Error: command not recognized\r\n")
    except Exception:
        pass
    finally:
        c.close()
def listen(ip):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port)); s.listen(50)
    while True:
        c, _ = s.accept()
        log.write("%s connect\n" % ip)
        threading.Thread(target=serve, args=(c, modes[ip], ip), daemon=True).start()
for ip in modes:
    threading.Thread(target=listen, args=(ip,), daemon=True).start()
print("listening", flush=True)
time.sleep(60)
EOP
port=$(free_port)
start_bg listen timeout 90 "$PY" "$T_DIR/listen.py" "$port" "$T_DIR/smtp.log"
for i in $(seq 50); do grep -q listening "$T_DIR/listen.log" && break; sleep 0.1; done

chk() { "$BUILD_DIR/mxsane-check" -c "$T_DIR/mxsane.conf" --smtp-port "$port" "$@"; }

# --- an accepting target: banner, EHLO with STARTTLS, exit 0
out=$(chk -j --smtp --smtp-timeout 3000 good.smtp.test)
rc=$?
json_fields "$out"
assert_eq "accepting target: exit 0" 0 "$rc"
assert_eq "accepting target: verdict" ok "${JF[verdict]}"
assert_eq "accepting target: probe ok" true "${JF[mx.0.smtp.0.ok]}"
assert_eq "accepting target: banner code" 220 "${JF[mx.0.smtp.0.banner_code]}"
assert_match "accepting target: banner text" '^220 accept\.smtp\.test ESMTP' "${JF[mx.0.smtp.0.banner]}"
assert_eq "accepting target: EHLO 250" 250 "${JF[mx.0.smtp.0.ehlo_code]}"
assert_eq "accepting target: STARTTLS offered" true "${JF[mx.0.smtp.0.starttls]}"
assert_eq "without --rcpt no RCPT is sent" "<missing>" "$(json_get "$out" mx.0.smtp.0.rcpt_code)"
assert_eq "no SMTP problem" null "${JF[smtp_problem]}"
txt=$(chk --smtp --smtp-timeout 3000 good.smtp.test)
assert_match "text: banner line" "smtp 127\.0\.0\.11 port $port: 220 accept\.smtp\.test" "$txt"
assert_match "text: STARTTLS offered" "EHLO: 250, STARTTLS offered" "$txt"
assert_match "text: summary" "\[ok\] smtp: 1 of 1 address answers on port $port" "$txt"

# --- --rcpt: MAIL FROM:<> and RCPT TO:<postmaster@DOMAIN>, never DATA
out=$(chk -j --smtp --rcpt --smtp-timeout 3000 good.smtp.test)
rc=$?
json_fields "$out"
assert_eq "--rcpt accepted: exit 0" 0 "$rc"
assert_eq "--rcpt: RCPT 250" 250 "${JF[mx.0.smtp.0.rcpt_code]}"
assert_match "--rcpt: default recipient postmaster@DOMAIN" \
	"127\.0\.0\.11 RCPT TO:<postmaster@good\.smtp\.test>" "$(cat "$T_DIR/smtp.log")"
assert_match "--rcpt: null sender" "127\.0\.0\.11 MAIL FROM:<>" "$(cat "$T_DIR/smtp.log")"
assert_eq "DATA is never sent" 0 "$(grep -c ' DATA' "$T_DIR/smtp.log")"
chk -j --smtp --rcpt=someone@elsewhere.test --smtp-timeout 3000 good.smtp.test >/dev/null
assert_match "--rcpt=ADDRESS is the recipient" "RCPT TO:<someone@elsewhere\.test>" \
	"$(cat "$T_DIR/smtp.log")"
chk --smtp --rcpt='a@b>x' good.smtp.test >/dev/null 2>&1
assert_eq "--rcpt with an angle bracket: usage error" 64 "$?"
chk --rcpt good.smtp.test >/dev/null 2>&1
assert_eq "--rcpt without --smtp: usage error" 64 "$?"
chk --smtp --helo 'a b' good.smtp.test >/dev/null 2>&1
assert_eq "--helo with a space: usage error" 64 "$?"

# --- the backup that does not know the domain: exit 3, said plainly
out=$(chk -j --smtp --rcpt --smtp-timeout 3000 backupbad.smtp.test)
rc=$?
json_fields "$out"
assert_eq "refusing backup: exit 3" 3 "$rc"
assert_eq "refusing backup: verdict still ok" ok "${JF[verdict]}"
assert_eq "refusing backup: its RCPT code" 550 "${JF[mx.1.smtp.0.rcpt_code]}"
assert_match "refusing backup: the problem is said" \
	'ref\.smtp\.test\. \[127\.0\.0\.12\] refuses mail for backupbad\.smtp\.test \(550 5\.1\.1.*while acc\.smtp\.test\. \[127\.0\.0\.11\] accepts it' \
	"${JF[smtp_problem]}"
txt=$(chk --smtp --rcpt --smtp-timeout 3000 backupbad.smtp.test)
assert_eq "refusing backup, text: exit 3" 3 "$?"
assert_match "text: SMTP PROBLEM line" 'SMTP PROBLEM: ref\.smtp\.test\. \[127\.0\.0\.12\] refuses' "$txt"
assert_match "text: the refused RCPT" 'RCPT TO: REFUSED: 550 5\.1\.1' "$txt"
chk --smtp --smtp-timeout 3000 backupbad.smtp.test >/dev/null
assert_eq "refusing backup without --rcpt: unseen, exit 0" 0 "$?"

# --- nothing answers: silent x2, silent x2, refused; all probed at once within one timeout
t0=$(now_ms)
out=$(chk -j --smtp --smtp-timeout 1000 dead.smtp.test)
rc=$?
t1=$(now_ms)
json_fields "$out"
assert_eq "dead: exit 3" 3 "$rc"
assert_eq "dead: five addresses probed" "2 2 1" "${JF[#mx.0.smtp]} ${JF[#mx.1.smtp]} ${JF[#mx.2.smtp]}"
assert_match "dead: said plainly" 'no MX target answers on port [0-9]+: none of the 5 addresses' \
	"${JF[smtp_problem]}"
assert_eq "dead: silent host" "no banner within 1000 ms" "${JF[mx.0.smtp.0.error]}"
assert_eq "dead: connection refused" "connect: Connection refused" "${JF[mx.2.smtp.0.error]}"
elapsed=$((t1 - t0))
if [ "$elapsed" -lt $((1000 + $(slack_ms 900))) ]; then
	ok "dead: 4 silent addresses at a 1000 ms timeout took $elapsed ms (in parallel)"
else
	not_ok "dead: probes in parallel" "took $elapsed ms (one after another would be 4000+)"
fi
txt=$(chk --smtp --smtp-timeout 1000 dead.smtp.test)
assert_match "dead, text: FAILED per address" "smtp 127\.0\.0\.15 port $port: FAILED: connect: Connection refused" "$txt"
assert_match "dead, text: the problem" 'SMTP PROBLEM: no MX target answers' "$txt"

# --- a more preferred host that does not answer while a less preferred one does: a note
out=$(chk -j --smtp --smtp-timeout 1000 prefdown.smtp.test)
rc=$?
assert_eq "preferred host silent, backup answers: exit 0" 0 "$rc"
assert_match "preferred host silent: advisory note" \
	'silent\.smtp\.test\. \(preference 10\) does not answer on port [0-9]+ while acc\.smtp\.test\. \(preference 20\) does' \
	"$(json_get "$out" advice)"

# --- slow banner: within the timeout, or not
out=$(chk -j --smtp --smtp-timeout 1000 slowbanner.smtp.test)
assert_eq "slow banner, 1 s timeout: exit 3" 3 "$?"
assert_eq "slow banner, 1 s timeout: reported" "no banner within 1000 ms" "$(json_get "$out" mx.0.smtp.0.error)"
out=$(chk -j --smtp --smtp-timeout 5000 slowbanner.smtp.test)
assert_eq "slow banner, 5 s timeout: exit 0" 0 "$?"
assert_eq "slow banner, 5 s timeout: banner" 220 "$(json_get "$out" mx.0.smtp.0.banner_code)"

# --- a single refused target; null MX is not probed and keeps its verdict's exit status
out=$(chk -j --smtp --smtp-timeout 2000 refused.smtp.test)
assert_eq "refused target: exit 3" 3 "$?"
assert_eq "refused target: probe failed" false "$(json_get "$out" mx.0.smtp.0.ok)"
chk -j --smtp --smtp-timeout 2000 nullmx.smtp.test >/dev/null
assert_eq "null MX with --smtp: exit 1 (the verdict), nothing probed" 1 "$?"

# --- without --smtp nothing connects
before=$(grep -c connect "$T_DIR/smtp.log")
chk -j good.smtp.test >/dev/null
sleep 0.3
assert_eq "no connection without --smtp" "$before" "$(grep -c connect "$T_DIR/smtp.log")"
finish

# tests/lib/metrics.sh - talking to the daemons' metrics endpoint (metrics.listen) and to the
# policy service in integration tests.  Source after common.sh.
#
#   http_raw ADDR REQUEST    send REQUEST (printf escapes interpreted by the caller) to ADDR
#                            (inet:HOST:PORT or unix:/path), print the whole response
#   scrape ADDR FILE         GET /metrics into FILE (body only); 1 unless the answer is 200
#   metric FILE NAME LABELS  the value of NAME{LABELS} in FILE (LABELS exactly as written,
#                            "" for none); empty when absent
#   policy_ask ADDR N REQUEST   send REQUEST (attribute lines; the empty line that ends it
#                            is added) N times on one connection, print the replies'
#                            action lines, one per line

if [ -n "${_MXS_METRICS_SH:-}" ]; then return 0; fi
_MXS_METRICS_SH=1

http_raw() {
	"$PY" - "$1" "$2" <<'PYEOF'
import socket, sys
a, req = sys.argv[1], sys.argv[2]
if a.startswith("unix:"):
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(a[5:])
else:
    h, p = a[5:].rsplit(":", 1)
    s = socket.create_connection((h.strip("[]"), int(p)), timeout=10)
s.sendall(req.encode("latin-1"))
data = b""
while True:
    try:
        b = s.recv(65536)
    except OSError:
        break
    if not b:
        break
    data += b
sys.stdout.write(data.decode("latin-1"))
PYEOF
}

scrape() {
	local resp
	resp=$(http_raw "$1" $'GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n') || return 1
	printf '%s\n' "${resp#*$'\r\n\r\n'}" >"$2"
	[[ $resp == "HTTP/1.1 200 "* ]]
}

metric() {
	local f=$1 name=$2 labels=$3
	if [ -n "$labels" ]; then
		awk -v k="$name{$labels}" '$1 == k { print $2; exit }' "$f"
	else
		awk -v k="$name" '$1 == k { print $2; exit }' "$f"
	fi
}

policy_ask() {
	"$PY" - "$1" "$2" "$3" <<'PYEOF'
import socket, sys
a, n, req = sys.argv[1], int(sys.argv[2]), sys.argv[3].rstrip("\n") + "\n\n"
if a.startswith("unix:"):
    s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(a[5:])
else:
    h, p = a[5:].rsplit(":", 1)
    s = socket.create_connection((h.strip("[]"), int(p)), timeout=20)
f = s.makefile("rb")
for _ in range(n):
    s.sendall(req.encode())
    while True:
        line = f.readline()
        if not line or line == b"\n":
            break
        print(line.decode().rstrip("\n"))
PYEOF
}

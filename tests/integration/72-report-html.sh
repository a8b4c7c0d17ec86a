#!/usr/bin/env bash
# 72-report-html.sh - mxsane-report --html: one self-contained page, opened in headless
# Chromium (Debian's chromium).  Its script must draw the charts: the DOM Chromium leaves
# (--dump-dom) has one bar per hour and verdict and one per top domain and client, with the
# counts of --json; a screenshot shows the bars in their verdict colours.  The page fetches
# nothing (no src/href/url(), a Content-Security-Policy), and a hostile sender address in the
# history cannot inject markup.  Lines from a real mxsane-policyd (spawn mode, -f, knotd).
. "$(dirname "$0")/../lib/common.sh"
. "$MXS_TOP/tests/lib/dns.sh"

need_cmd chromium
need_bin mxsane-policyd
need_bin mxsane-report
POLICYD="$BUILD_DIR/mxsane-policyd"
REPORT="$BUILD_DIR/mxsane-report"
start_knot || { not_ok "knotd starts" "see the log above"; finish; }
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(-u root)

req() { # instance client sender recipient
	printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n'
	printf 'client_address=%s\nclient_name=unknown\nhelo_name=h.example\n' "$2"
	printf 'sender=%s\nrecipient=%s\ninstance=%s\n\n' "$3" "$4" "$1"
}
cat >"$T_DIR/mxsane.conf" <<EOF
resolver = { servers = [ "127.0.0.1:$KNOT_PORT" ]; timeout_ms = 3000; };
EOF
EVIL='<img src=x onerror=alert(1)></script><script>document.title="pwned"</script>@null-mx.mxs.test'
{
	req H1 192.0.2.10 a@null-mx.mxs.test r@ok-mx.mxs.test
	req H2 192.0.2.10 b@nonexistent.mxs.test r@ok-mx.mxs.test
	req H3 192.0.2.11 c@ok-mx.mxs.test r@ok-mx.mxs.test
	req H4 192.0.2.11 c@ok-mx.mxs.test r@null-mx.mxs.test
	req H5 192.0.2.12 "$EVIL" r@ok-mx.mxs.test
	req H6 192.0.2.12 d@ok-mx.mxs.test r@mx-target-nx.mxs.test
} | "$POLICYD" -s -f -c "$T_DIR/mxsane.conf" "${USER_ARGS[@]}" 2>"$T_DIR/policyd.err" >/dev/null
grep 'verdict=' "$T_DIR/policyd.err" >"$T_DIR/bare.log"
# spread over three hours, as rsyslog would have written them
"$PY" - "$T_DIR/bare.log" >"$T_DIR/mail.log" <<'EOF'
import sys, time
for i, l in enumerate(open(sys.argv[1])):
    t = 1796378400 + 1800 * i  # 2026-12-04T10:00Z, every 30 minutes
    print(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000000+00:00 mx1 " + l, end="")
EOF
"$REPORT" --html "$T_DIR/report.html" --client 192.0.2.12 "$T_DIR/mail.log"
assert_eq "--html with a client's history: exit 0" 0 "$?"
"$REPORT" --html "$T_DIR/all.html" "$T_DIR/mail.log" >"$T_DIR/stdout"
assert_eq "--html alone writes nothing on stdout" "0 0" "$? $(wc -c <"$T_DIR/stdout")"
"$REPORT" --json "$T_DIR/mail.log" >"$T_DIR/all.json"

assert_eq "self-contained: no src, href or url( in the page" "" \
	"$(grep -oiE '(src|href)[[:space:]]*=|url\(' "$T_DIR/all.html")"
assert_match "a Content-Security-Policy forbids fetching" "default-src 'none'" "$(cat "$T_DIR/all.html")"

# dump_dom FILE OUT: the DOM after the page's scripts ran
CHROME=(chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions
	--user-data-dir="$T_DIR/chromium" --proxy-server=127.0.0.1:9 --window-size=1100,1400)
dump_dom() { timeout 120 "${CHROME[@]}" --dump-dom "file://$1" >"$2" 2>>"$T_DIR/chromium.log"; }
dump_dom "$T_DIR/all.html" "$T_DIR/all.dom"
assert_eq "chromium dumps the DOM" 0 "$?"

# the bars Chromium's DOM holds, against the counts of --json
got=$("$PY" - "$T_DIR/all.dom" "$T_DIR/all.json" <<'EOF'
import json, re, sys
dom = open(sys.argv[1]).read()
r = json.load(open(sys.argv[2]))
V = ["ok", "null_mx", "nxdomain", "no_mail_host", "broken_mx", "mx_cname", "dns_error", "skipped"]
want_hours = sorted((h["hour"], v, h[v]) for h in r["hours"] for v in V if h[v])
rects = re.findall(r"<rect [^>]*>", dom)
def attr(t, a):
    m = re.search(r'\b%s="([^"]*)"' % a, t)
    return m.group(1) if m else None
hours = [t for t in rects if "bar-hour" in (attr(t, "class") or "")]
tops = [t for t in rects if "bar-top" in (attr(t, "class") or "")]
ok_geom = all(float(attr(t, "height")) > 0 and float(attr(t, "width")) > 0 for t in hours + tops)
got_hours = sorted((re.search(r"<title>(\S+) ", dom[dom.index(t):]).group(1), attr(t, "data-verdict"), int(attr(t, "data-count"))) for t in hours)
want_tops = [x["refused"] + x["would_refuse"] for x in r["senders"]] + [x["messages"] for x in r["clients"]]
got_tops = [int(attr(t, "data-count")) for t in tops]
m = re.search(r'data-bars="(\d+)"', dom)
print("hours", "same" if got_hours == want_hours else "differ: %s vs %s" % (got_hours, want_hours), len(hours))
print("tops", "same" if got_tops == want_tops else "differ: %s vs %s" % (got_tops, want_tops), len(tops))
print("geometry", ok_geom)
print("data-bars", m and int(m.group(1)) == len(hours) + len(tops))
print("svg", len(re.findall(r'<svg [^>]*class="chart"', dom)))
EOF
)
assert_eq "one bar per hour and verdict, with --json's counts" "hours same 9" "$(sed -n 1p <<<"$got")"
assert_eq "one bar per top sender domain and client, with --json's counts" "tops same 3" "$(sed -n 2p <<<"$got")"
assert_eq "every bar has a size" "geometry True" "$(sed -n 3p <<<"$got")"
assert_eq "the script counted what it drew" "data-bars True" "$(sed -n 4p <<<"$got")"
assert_eq "three charts" "svg 3" "$(sed -n 5p <<<"$got")"

# the hostile sender: text in a table cell, never markup, and the script still ran
dump_dom "$T_DIR/report.html" "$T_DIR/report.dom"
assert_eq "no injected element" "" "$(grep -oiE '<img|<script>document' "$T_DIR/report.dom")"
assert_match "the address shown as text in the history" '&lt;img src=x onerror=alert\(1\)&gt;&lt;/script&gt;' \
	"$(cat "$T_DIR/report.dom")"
assert_match "the title is the page's" '<title>mxsane report</title>' "$(cat "$T_DIR/report.dom")"
assert_match "its charts were drawn" 'data-bars="[1-9]' "$(cat "$T_DIR/report.dom")"

# a screenshot: the bars are painted in their verdict colours
timeout 120 "${CHROME[@]}" --screenshot="$T_DIR/shot.png" "file://$T_DIR/all.html" 2>>"$T_DIR/chromium.log" >/dev/null
colours=$("$PY" - "$T_DIR/shot.png" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert depth == 8 and interlace == 0 and ctype in (2, 6)
bpp = 4 if ctype == 6 else 3
raw, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line)
    prev = line
want = {"ok": (0x4c, 0xaf, 0x50), "null_mx": (0xe5, 0x39, 0x35), "nxdomain": (0x8e, 0x24, 0xaa), "broken_mx": (0x6d, 0x4c, 0x41)}
count = {k: 0 for k in want}
for line in rows:
    for x in range(0, stride, bpp):
        px = tuple(line[x:x + 3])
        for k, v in want.items():
            if px == v:
                count[k] += 1
print(" ".join("%s=%s" % (k, "painted" if count[k] > 200 else count[k]) for k in want))
EOF
)
assert_eq "the screenshot shows each verdict's bars in its colour" \
	"ok=painted null_mx=painted nxdomain=painted broken_mx=painted" "$colours"
finish

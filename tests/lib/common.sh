# tests/lib/common.sh - shared helpers for tests/integration/*.sh (bash, `set -u` safe).
#
# Source it first:   . "$(dirname "$0")/../lib/common.sh"
# It provides:
#   T_DIR                 fresh temporary directory for this script (removed on exit unless KEEP=1)
#   MXS_TOP, BUILD, BUILD_DIR   top of the tree, build dir name (build | build-san), its absolute path
#   PY                    /usr/bin/python3 (never the pyenv one on PATH)
#   start_bg NAME CMD...  start CMD in the background, output to $T_DIR/NAME.log, PID tracked
#   track_pid PID         have the EXIT trap stop PID (for processes started some other way)
#   at_cleanup CMD        have the EXIT trap run CMD (a function name, no arguments) before it
#                         stops the tracked PIDs; last registered runs first (stop_postfix...)
#   stop_pid PID          stop one tracked process now (TERM, then KILL after 5 s)
#   free_port             print a port that is free for TCP and UDP on 127.0.0.1
#   wait_port PORT [tcp|udp]   wait (max ~10 s) until something listens there; 1 on timeout
#   now_ms                wall clock in milliseconds
#   slack_ms MS           timing slack MS for process overhead, x20 under VALGRIND=1 runs
#   need_cmd CMD...       skip the script unless every CMD is on PATH
#   need_bin NAME...      skip the script unless $BUILD_DIR/NAME has been built (call it
#                         directly, not in $(...): skip must run in the script's own shell)
#   json_get JSON KEY     print one field of a JSON object: strings raw, null as "null",
#                         everything else as JSON; KEY may be a path "mx.0.host"; "#mx" = length
#   json_fields JSON      parse one JSON object into the associative array JF, flattened:
#                         JF[verdict], JF[mx.0.host], JF[#mx] (length of a list), JF[_error]
#                         (set only when JSON is not an object); values as json_get prints them
#   ok NAME | not_ok NAME DETAIL | assert_eq NAME EXPECTED ACTUAL | assert_match NAME ERE ACTUAL
#   finish                list the failed assertions again, print "N passed, N failed";
#                         exit 1 if any assertion failed, else 0
#   skip REASON           exit 77 (tests/run-all shows the last line of the log as the reason)
#
# The EXIT trap stops everything the script started (tracked PIDs: TERM, wait, then KILL) and
# removes T_DIR.  With KEEP=1 the directory (configs, logs) is kept and its path printed.

if [ -n "${_MXS_COMMON_SH:-}" ]; then return 0; fi
_MXS_COMMON_SH=1

set -u

MXS_TOP="${MXS_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
BUILD="${BUILD:-build}"
case $BUILD in
/*) BUILD_DIR="$BUILD" ;;
*) BUILD_DIR="$MXS_TOP/$BUILD" ;;
esac
PY=/usr/bin/python3
export MXS_TOP BUILD BUILD_DIR

_T_NAME="$(basename "${0%.sh}")"
T_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mxs-${_T_NAME}.XXXXXX")" || {
	echo "cannot create a temporary directory" >&2
	exit 1
}
export T_DIR

_T_PIDS=()
_T_HOOKS=()
_T_PASS=0
_T_FAIL=0
_T_PORTS=" "
_T_SKIP_REASON=

# Stop one process: TERM, wait up to 5 s, then KILL.  Only PIDs this script started.
_t_stop() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "# pid $pid ignored SIGTERM for 5 s, killing it" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

_t_cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM HUP
	local i
	for ((i = ${#_T_HOOKS[@]} - 1; i >= 0; i--)); do
		"${_T_HOOKS[$i]}" || echo "# cleanup hook ${_T_HOOKS[$i]} failed" >&2
	done
	for pid in "${_T_PIDS[@]+"${_T_PIDS[@]}"}"; do
		_t_stop "$pid"
	done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "# KEEP=1: kept $T_DIR" >&2
	else
		rm -rf "$T_DIR"
	fi
	# tests/run-all shows the last line of the log as the skip reason.
	if [ -n "$_T_SKIP_REASON" ]; then echo "$_T_SKIP_REASON"; fi
	exit "$rc"
}
trap _t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

track_pid() {
	_T_PIDS+=("$1")
}

at_cleanup() {
	_T_HOOKS+=("$1")
}

stop_pid() {
	local pid=$1 p rest=()
	_t_stop "$pid"
	for p in "${_T_PIDS[@]+"${_T_PIDS[@]}"}"; do
		[ "$p" = "$pid" ] || rest+=("$p")
	done
	_T_PIDS=("${rest[@]+"${rest[@]}"}")
}

# start_bg NAME CMD...: run CMD in the background (stdin from /dev/null, stdout+stderr to
# $T_DIR/NAME.log); sets BG_PID.
start_bg() {
	local name=$1
	shift
	"$@" </dev/null >"$T_DIR/$name.log" 2>&1 &
	BG_PID=$!
	track_pid "$BG_PID"
}

# start_on_free_port NAME CMD...: start_bg NAME CMD with every "{PORT}" in its arguments
# replaced by a free TCP port on 127.0.0.1, and wait until something listens there.  Another
# process can take the port between free_port and the bind: then try again (3 times).
# Sets BG_PORT and BG_PID; on failure prints NAME's log to stderr and returns 1.
start_on_free_port() {
	local name=$1 try port a args
	shift
	for try in 1 2 3; do
		port=$(free_port) || return 1
		args=()
		for a in "$@"; do
			args+=("${a//\{PORT\}/$port}")
		done
		start_bg "$name" "${args[@]}"
		if wait_port "$port"; then
			BG_PORT=$port
			return 0
		fi
		stop_pid "$BG_PID"
	done
	echo "--- $name.log" >&2
	cat "$T_DIR/$name.log" >&2
	return 1
}

now_ms() {
	local ns
	ns=$(date +%s%N)
	echo $((ns / 1000000))
}

# A port that is free for both TCP and UDP on 127.0.0.1 (and ::1 when it exists), and that
# this script has not handed out before.  Another process may still take it before we bind:
# callers that start servers retry with a new port when binding fails.
free_port() {
	local port i
	for i in $(seq 20); do
		port=$("$PY" - <<'EOF'
import socket, errno
def free(port):
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            try:
                s = socket.socket(fam, typ)
            except OSError:
                continue            # no IPv6 at all
            try:
                s.bind((host, port))
            except OSError as e:
                if e.errno == errno.EADDRNOTAVAIL:
                    continue        # ::1 not configured
                return False
            finally:
                s.close()
    return True
for _ in range(50):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    if free(p):
        print(p)
        break
EOF
)
		[ -n "$port" ] || continue
		case $_T_PORTS in *" $port "*) continue ;; esac
		_T_PORTS="$_T_PORTS$port "
		echo "$port"
		return 0
	done
	echo "free_port: no free port found" >&2
	return 1
}

# Is something bound to 127.0.0.1:PORT?  tcp: a connect succeeds; udp: our bind fails.
_t_listening() {
	"$PY" - "$1" "$2" <<'EOF'
import socket, sys
port, proto = int(sys.argv[1]), sys.argv[2]
if proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        sys.exit(0)
    sys.exit(1)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", port))
except OSError:
    sys.exit(1)
sys.exit(0)
EOF
}

# wait_file PATH [SECS]: until PATH exists (default 10 s); 1 if it never appears.
wait_file() {
	local i
	for i in $(seq $((${2:-10} * 10))); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_gone PID [SECS]: until PID has exited (default 10 s); 1 if it still runs.
wait_gone() {
	local i
	for i in $(seq $((${2:-10} * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

wait_port() {
	local port=$1 proto=${2:-tcp} i
	for i in $(seq 100); do
		_t_listening "$port" "$proto" && return 0
		sleep 0.1
	done
	echo "wait_port: nothing listening on 127.0.0.1:$port/$proto after 10 s" >&2
	return 1
}

skip() {
	_T_SKIP_REASON="SKIP: $*" # printed last by the EXIT trap
	exit 77
}

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c not installed"
	done
}

need_bin() {
	local b
	for b in "$@"; do
		[ -x "$BUILD_DIR/$b" ] || skip "$BUILD_DIR/$b not built (run make)"
	done
}

json_get() {
	"$PY" -c '
import json, sys
try:
    v = json.loads(sys.argv[1])
except ValueError:
    print("<not json>"); sys.exit(0)
key = sys.argv[2]
count = key.startswith("#")
for part in key.lstrip("#").split("."):
    try:
        v = v[int(part)] if isinstance(v, list) else v[part]
    except (KeyError, IndexError, ValueError, TypeError):
        print("<missing>"); sys.exit(0)
if count:
    print(len(v) if isinstance(v, (list, dict, str)) else "<not a list>")
elif v is None:
    print("null")
elif isinstance(v, str):
    print(v)
else:
    print(json.dumps(v, sort_keys=True))
' "$1" "$2"
}

declare -gA JF=()
json_fields() {
	local k v
	JF=()
	while IFS=$'\t' read -r k v; do
		JF[$k]=$v
	done < <("$PY" -c '
import json, sys
def out(k, v):
    if v is None:
        v = "null"
    elif isinstance(v, bool):
        v = "true" if v else "false"
    elif isinstance(v, str):
        pass
    else:
        v = json.dumps(v, sort_keys=True)
    v = v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    print("%s\t%s" % (k, v))
def walk(prefix, v):
    out(prefix, v)
    if isinstance(v, list):
        out("#" + prefix, len(v))
        for i, x in enumerate(v):
            walk("%s.%d" % (prefix, i), x)
    elif isinstance(v, dict):
        for k, x in v.items():
            walk("%s.%s" % (prefix, k), x)
try:
    o = json.loads(sys.argv[1])
except ValueError as e:
    out("_error", "not JSON: %s" % e); sys.exit(0)
if not isinstance(o, dict):
    out("_error", "not a JSON object"); sys.exit(0)
for k, x in o.items():
    walk(k, x)
' "$1")
}

ok() {
	_T_PASS=$((_T_PASS + 1))
	echo "ok - $1"
}

_T_FAILED=()
not_ok() {
	_T_FAIL=$((_T_FAIL + 1))
	echo "not ok - $1: ${2:-}"
	_T_FAILED+=("not ok - $1: ${2:-}")
}

assert_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1" "expected '$2', got '$3'"
	fi
}

assert_match() {
	if [[ $3 =~ $2 ]]; then
		ok "$1"
	else
		not_ok "$1" "'$3' does not match /$2/"
	fi
}

finish() {
	# repeated at the end, where tests/run-all's tail of the log shows them
	if [ "$_T_FAIL" -gt 0 ]; then
		echo "---- failed assertions ----"
		printf '%s\n' "${_T_FAILED[@]}"
	fi
	echo "$_T_PASS passed, $_T_FAIL failed"
	[ "$_T_FAIL" -eq 0 ] && exit 0
	exit 1
}

# slack_ms MS: a timing slack of MS milliseconds for process and scheduling overhead, scaled
# when the daemons run under valgrind (MXS_VALGRIND=1, set by `make check VALGRIND=1`), which
# slows the code ~20x.  Only the slack scales, never the budget the daemon enforces itself.
slack_ms() {
	if [ "${MXS_VALGRIND:-0}" = 1 ]; then
		echo $(($1 * ${MXS_VALGRIND_SLACK:-20}))
	else
		echo "$1"
	fi
}

# tests/lib/dns.sh - DNS servers for integration tests, on loopback ports of their own.
# Source after common.sh.
#
#   start_knot      knotd (authoritative) serving every tests/zones/*.zone (zone name = file name
#                   without .zone) on 127.0.0.1@KNOT_PORT, and ::1@KNOT_PORT when ::1 works.
#                   Config, rundir, databases, pid file and log (knot.log) all live in
#                   $T_DIR/knot; nothing is written elsewhere (no journal, no zone file sync).
#                   Exports KNOT_PORT, KNOT_PID (knotd), KNOT_V6=1 if it listens on ::1 too,
#                   and KNOT_ZONES (the served copies of the zone files).  knotd is bounded by
#                   KNOT_LIFETIME (seconds, default 1800), in case the script itself is killed.
#                   KNOT_ZONES_DIR: serve the *.zone files of that directory instead of
#                   tests/zones (bench/ serves its generated corpus this way).
#   knot_reload ZONE...   after editing $KNOT_ZONES/ZONE.zone: reload it and wait until done
#                   (no serial bump needed)
#   start_faultdns  tests/tools/faultdns.py (fault-injecting responder for zone fault.test) on
#                   127.0.0.1 FAULT_PORT, UDP and TCP; log in $T_DIR/faultdns.log.
#                   Exports FAULT_PORT.  FAULT_LIFETIME (seconds, default 600) bounds its life.
#   dig_short SERVER_PORT ARGS...   kdig +short against 127.0.0.1, one try, 1 s timeout
#
# Both skip the script (exit 77) when their software is not installed, and fail (return 1,
# with the server's log on stderr) when the server does not come up.  The EXIT trap of
# common.sh stops them.

if [ -n "${_MXS_DNS_SH:-}" ]; then return 0; fi
_MXS_DNS_SH=1

_have_v6() {
	"$PY" -c 'import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::1", 0))' \
		2>/dev/null
}

dig_short() {
	local port=$1
	shift
	kdig @127.0.0.1 -p "$port" +retry=0 +timeout=1 +short "$@"
}

# Does the server on 127.0.0.1:PORT answer SOA ZONE (one try, 1 s)?  Extra kdig options
# (+tcp) may follow.  Checks the answer's shape, not just that kdig printed something.
_dns_has_soa() {
	local port=$1 zone=$2
	shift 2
	kdig @127.0.0.1 -p "$port" +retry=0 +timeout=1 +short "$@" SOA "$zone" 2>/dev/null |
		grep -qE '^[^ ]+ [^ ]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+$'
}

# Wait (max ~10 s) until the server answers SOA ZONE over UDP and TCP; give up early when
# process PID (the server) has exited.
_dns_wait_soa() {
	local port=$1 zone=$2 pid=$3 i
	for i in $(seq 50); do
		if _dns_has_soa "$port" "$zone" && _dns_has_soa "$port" "$zone" +tcp; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

_knot_conf() { # port dir
	local port=$1 dir=$2 z name
	{
		echo "# written by tests/lib/dns.sh"
		echo "server:"
		echo "    rundir: \"$dir\""
		echo "    pidfile: \"$dir/knot.pid\""
		echo "    udp-workers: 2"
		echo "    tcp-workers: 2"
		echo "    background-workers: 1"
		if [ "${KNOT_V6:-0}" = 1 ]; then
			echo "    listen: [ 127.0.0.1@$port, ::1@$port ]"
		else
			echo "    listen: [ 127.0.0.1@$port ]"
		fi
		echo "control:"
		echo "    listen: \"$dir/knot.sock\""
		echo "database:"
		echo "    storage: \"$dir/db\""
		echo "log:"
		echo "  - target: \"$dir/knot.log\""
		echo "    any: info"
		echo "template:"
		echo "  - id: default"
		echo "    storage: \"$dir/zones\""
		echo "    file: \"%s.zone\""
		echo "    zonefile-sync: -1"
		echo "    zonefile-load: whole"
		echo "    journal-content: none"
		echo "zone:"
		for z in "$dir"/zones/*.zone; do
			name=${z##*/}
			echo "  - domain: ${name%.zone}"
		done
	} >"$dir/knot.conf"
}

start_knot() {
	need_cmd knotd kdig
	local dir="$T_DIR/knot" port attempt z pid
	local src="${KNOT_ZONES_DIR:-$MXS_TOP/tests/zones}"
	local zones=("$src"/*.zone)
	[ -e "${zones[0]}" ] || { echo "start_knot: no zone files in $src" >&2; return 1; }
	# The zone whose SOA says "up": mxs.test for tests/zones, else the first file's.
	local first=mxs.test
	if [ -n "${KNOT_ZONES_DIR:-}" ]; then
		first=${zones[0]##*/}
		first=${first%.zone}
	fi
	KNOT_V6=0
	_have_v6 && KNOT_V6=1
	for attempt in 1 2 3; do
		rm -rf "$dir"
		mkdir -p "$dir/zones" "$dir/db"
		# A copy, so that nothing knotd does can touch the tree.
		cp "${zones[@]}" "$dir/zones/"
		port=$(free_port) || return 1
		_knot_conf "$port" "$dir"
		# timeout(1) forwards our SIGTERM to knotd and kills it if we never get to.
		timeout -k 5 "${KNOT_LIFETIME:-1800}" knotd -c "$dir/knot.conf" \
			</dev/null >"$dir/knotd.out" 2>&1 &
		pid=$!
		track_pid "$pid"
		if _dns_wait_soa "$port" "$first" "$pid"; then
			for z in "${zones[@]}"; do
				z=${z##*/}
				z=${z%.zone}
				if ! _dns_has_soa "$port" "$z"; then
					echo "start_knot: zone $z is not served (see $dir/knot.log)" >&2
					cat "$dir/knot.log" "$dir/knotd.out" >&2
					return 1
				fi
			done
			KNOT_PORT=$port
			KNOT_PID=$(cat "$dir/knot.pid" 2>/dev/null || echo "$pid")
			KNOT_ZONES="$dir/zones"
			export KNOT_PORT KNOT_V6 KNOT_PID KNOT_ZONES
			return 0
		fi
		echo "start_knot: attempt $attempt on port $port failed:" >&2
		cat "$dir/knot.log" "$dir/knotd.out" >&2 2>/dev/null
		stop_pid "$pid"
	done
	return 1
}

knot_reload() {
	knotc -c "$T_DIR/knot/knot.conf" -b -t 10 zone-reload "$@" >/dev/null
}

start_faultdns() {
	"$PY" -c 'import dnslib' 2>/dev/null || skip "python3-dnslib not installed"
	need_cmd kdig
	local port attempt pid log="$T_DIR/faultdns.log"
	for attempt in 1 2 3; do
		port=$(free_port) || return 1
		"$PY" "$MXS_TOP/tests/tools/faultdns.py" --port "$port" \
			--lifetime "${FAULT_LIFETIME:-600}" </dev/null >>"$log" 2>&1 &
		pid=$!
		track_pid "$pid"
		if _dns_wait_soa "$port" fault.test "$pid"; then
			FAULT_PORT=$port
			FAULT_PID=$pid
			export FAULT_PORT FAULT_PID
			return 0
		fi
		echo "start_faultdns: attempt $attempt on port $port failed:" >&2
		tail -n 20 "$log" >&2
		stop_pid "$pid"
	done
	return 1
}

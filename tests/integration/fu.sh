# Helpers for the integration tests (sourced after tests/lib.sh): builds
# tests/tools/fakeupstream.c into build/tools (cached) and starts it.

# fu_build: sets FU to the fakeupstream binary; returns 1 when it cannot be built.
fu_build() {
	local src=$ROOT/tests/tools/fakeupstream.c dir=$ROOT/build/tools
	FU=$dir/fakeupstream
	if [ ! -x "$FU" ] || [ "$src" -nt "$FU" ]; then
		mkdir -p "$dir" || return 1
		cc -O2 -Wall -Werror -o "$FU.tmp.$$" "$src" || { rm -f "$FU.tmp.$$"; return 1; }
		mv -f "$FU.tmp.$$" "$FU"
	fi
}

# fu_start PORT ARGS...: starts fakeupstream on 127.0.0.1:PORT (exits by
# itself after 120 s), sets FU_PID, waits until its UDP socket is bound.
fu_start() {
	local port=$1; shift
	"$FU" -p "$port" -t 120 "$@" &
	FU_PID=$!
	T_PIDS+=("$FU_PID")
	local i
	for i in $(seq 1 50); do
		# it must be our process that holds the port, not someone else
		kill -0 "$FU_PID" 2>/dev/null || return 1
		ss -Hlnu "sport = :$port" | grep -q . && ss -Hlnt "sport = :$port" | grep -q . &&
			kill -0 "$FU_PID" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# rq ARGS...: the raw client (fakeupstream -c) against sedns on $PORT.
rq() { "$FU" -c "${SEDNS_ADDR:-127.0.0.1}:$PORT" "$@"; }

# ms_since START_NS: milliseconds since a date +%s%N value
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# tool_build NAME: builds tests/tools/NAME.c into build/tools/NAME (cached)
# and prints its path; returns 1 when it cannot be built.
tool_build() {
	local src=$ROOT/tests/tools/$1.c dir=$ROOT/build/tools bin=$ROOT/build/tools/$1
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
		mkdir -p "$dir" || return 1
		cc -O2 -Wall -Werror -o "$bin.tmp.$$" "$src" || { rm -f "$bin.tmp.$$"; return 1; }
		mv -f "$bin.tmp.$$" "$bin"
	fi
	echo "$bin"
}

# nsd_conf DIR PORT ZONE...: writes DIR/nsd.conf for an nsd on
# 127.0.0.1:PORT serving each ZONE from DIR/ZONE.zone (the zone files must
# be in DIR already), run in the foreground by nsd_start.
nsd_conf() {
	local dir=$1 port=$2 z
	shift 2
	{
		cat <<EOF2
server:
  port: $port
  ip-address: 127.0.0.1
  zonesdir: "$dir"
  pidfile: "$dir/nsd.pid"
  xfrdfile: "$dir/xfrd.state"
  zonelistfile: "$dir/zone.list"
  database: ""
  username: ""
  chroot: ""
  logfile: "$dir/nsd.log"
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
EOF2
		for z in "$@"; do
			printf 'zone:\n  name: %s\n  zonefile: %s.zone\n' "$z" "$z"
		done
	} >"$dir/nsd.conf"
}

# nsd_start DIR: starts nsd on DIR/nsd.conf in the background, sets NSD_PID
nsd_start() {
	nsd -d -c "$1/nsd.conf" >"$1/stdout" 2>&1 &
	NSD_PID=$!
	T_PIDS+=("$NSD_PID")
}

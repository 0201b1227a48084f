#!/usr/bin/env bash
# Syscalls and context switches per delivered Gbit, relaymesh beside
# nginx-rtmp: the fan-out clip (~3 Mbit/s, ffmpeg -re) published to one
# server at a time on loopback, first with no reader (the stream's fixed
# cost), then with N light RTMP readers (bench/rtmpreader). Each phase is
# read without touching the server: CPU (utime+stime of the process tree,
# /proc), context switches (voluntary and involuntary, summed over every
# thread of the tree) and the bytes its sockets sent (bytes_sent of `ss
# -ti` on the RTMP port: what the players were sent; /proc/PID/io is no
# use here, it does not count nginx's sendto). With STRACE=1 every syscall
# is then counted by `strace -c -f` for STRACE_SECONDS more, with the
# bytes sent meanwhile (strace slows the server: its counts per Gbit are
# of the mix, not of the undisturbed rate).
#
# Usage: bench/syscalls.sh          (from the repository root)
# Knobs (environment):
#   READERS=50  SERVERS="nginx relaymesh"  REPS=2
#   PUB_WINDOW=10   seconds measured with the publisher alone
#   WINDOW=10       seconds measured with the readers
#   WARMUP=4        seconds between the readers connecting and the window
#   STRACE=1  STRACE_SECONDS=8
#   BASE_PORT=29360  RELAYMESH_BIN=bin/relaymesh (built when unset)
#   OUT=/tmp/relaymesh-bench/sys-DATE  CACHE=/tmp/relaymesh-bench
# Needs: go, ffmpeg, nginx + libnginx-mod-rtmp, jq, ss (strace for STRACE=1).
set -euo pipefail

READERS=${READERS:-50}
SERVERS=${SERVERS:-"nginx relaymesh"}
REPS=${REPS:-2}
PUB_WINDOW=${PUB_WINDOW:-10}
WINDOW=${WINDOW:-10}
WARMUP=${WARMUP:-4}
STRACE=${STRACE:-1}
STRACE_SECONDS=${STRACE_SECONDS:-8}
BASE_PORT=${BASE_PORT:-29360}
CACHE=${CACHE:-/tmp/relaymesh-bench}
OUT=${OUT:-$CACHE/sys-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
cleanup() { stop_all; }
bench_setup
need_tools go ffmpeg nginx jq ss
[ "$STRACE" = 1 ] && need_tools strace
build_binaries rtmpreader
ensure_clip

# tree PID: PID and its descendants
tree() {
	local p=$1 c
	echo "$p"
	for c in $(pgrep -P "$p" || true); do tree "$c"; done
}

# sent PORT: bytes sent so far by the established connections of PORT
sent() {
	ss -tinH state established "( sport = :$1 )" | grep -o 'bytes_sent:[0-9]*' | cut -d: -f2 |
		awk '{s += $1} END {print s + 0}'
}

# sample PID: "ticks systicks volcs involcs bytes_sent" summed over the tree
sample() {
	local p t s=0 st=0 v=0 iv=0 f
	for p in $(tree "$1"); do
		f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
		set -- $f
		s=$((s + ${12} + ${13})) st=$((st + ${13}))
		for t in /proc/"$p"/task/*/status; do
			while read -r k n; do
				case $k in
				voluntary_ctxt_switches:) v=$((v + n)) ;;
				nonvoluntary_ctxt_switches:) iv=$((iv + n)) ;;
				esac
			done <"$t" 2>/dev/null || true
		done
	done
	echo "$s $st $v $iv $(sent "$RTMP_PORT")"
}

# phase SERVER N REP SECONDS: one JSON line of the window's rates into RESULTS
phase() {
	local a b
	a=($(sample "$SERVER_PID"))
	sleep "$4"
	b=($(sample "$SERVER_PID"))
	jq -cn --arg server "$1" --argjson n "$2" --argjson rep "$3" --argjson sec "$4" \
		--arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
		--argjson t "$((b[0] - a[0]))" --argjson st "$((b[1] - a[1]))" \
		--argjson v "$((b[2] - a[2]))" --argjson iv "$((b[3] - a[3]))" --argjson wc "$((b[4] - a[4]))" '
		($wc * 8 / 1e9) as $gbit
		| def r2: . * 100 | round / 100;
		def per(x): if $gbit > 0.01 then (x / $gbit | round) else null end;
		{server: $server, readers: $n, rep: $rep, seconds: $sec, load: $load,
		 cpu_percent: ($t / $sec | r2), kernel_share: (if $t > 0 then ($st / $t * 100 | round) else null end),
		 mbit_sent_per_s: ($wc * 8 / 1e6 / $sec | r2),
		 ctxsw_per_s: (($v + $iv) / $sec | round), voluntary_per_s: ($v / $sec | round),
		 cpu_s_per_gbit: (if $gbit > 0.01 then ($t / 100 / $gbit * 1000 | round / 1000) else null end),
		 ctxsw_per_gbit: per($v + $iv)}' >>"$RESULTS"
	tail -n 1 "$RESULTS" | jq -r '"   \(.server) rep=\(.rep) n=\(.readers) load=\(.load): cpu \(.cpu_percent)% (kernel \(.kernel_share)%), \(.mbit_sent_per_s) Mbit/s sent, ctxsw \(.ctxsw_per_s)/s (voluntary \(.voluntary_per_s)); per Gbit: cpu \(.cpu_s_per_gbit) s, ctxsw \(.ctxsw_per_gbit)"' >&2
}

for rep in $(seq "$REPS"); do
	for server in $SERVERS; do
		dir=$OUT/$server-r$rep
		mkdir -p "$dir/logs"
		case $server in
		nginx)
			RTMP_PORT=$BASE_PORT
			sed -e "s#@PORT@#$RTMP_PORT#g; s#@PREFIX@#$dir#g" bench/nginx-rtmp.conf.tmpl >"$dir/nginx.conf"
			nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
			SERVER_PID=$!
			PIDS+=("$SERVER_PID")
			;;
		relaymesh)
			RTMP_PORT=$((BASE_PORT + 1))
			BASE_PORT=$BASE_PORT start_relaymesh_conf "$dir" "" <<EOF
[srt]
listen = ""
EOF
			;;
		*) die "unknown server $server (nginx or relaymesh)" ;;
		esac
		wait_port "$RTMP_PORT"
		start_ffmpeg_loop "$dir/ffmpeg.log" "$CLIP" -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/bench"
		sleep 5
		log "rep $rep: $server, publisher alone"
		phase "$server" 0 "$rep" "$PUB_WINDOW"
		"$OUT/rtmpreader" -url "rtmp://127.0.0.1:$RTMP_PORT/live/bench" -n "$READERS" -wait-live 20s \
			-warmup 1s -duration "$((WARMUP + WINDOW + STRACE_SECONDS + 10))s" >"$dir/reader.json" 2>"$dir/reader.log" &
		reader_pid=$!
		PIDS+=("$reader_pid")
		sleep "$((WARMUP + 3))"
		log "rep $rep: $server, $READERS readers"
		phase "$server" "$READERS" "$rep" "$WINDOW"
		if [ "$STRACE" = 1 ]; then
			target=$SERVER_PID
			[ "$server" = nginx ] && target=$(pgrep -P "$SERVER_PID" | head -n 1)
			b0=$(sent "$RTMP_PORT")
			timeout -s INT "$STRACE_SECONDS" strace -c -f -p "$target" -o "$dir/strace-c.txt" 2>/dev/null || true
			b1=$(sent "$RTMP_PORT")
			jq -cn --arg server "$server" --argjson n "$READERS" --argjson rep "$rep" \
				--argjson bytes "$((b1 - b0))" --rawfile table "$dir/strace-c.txt" \
				'($table | split("\n") | map(select(test("^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+")) | split(" ") | map(select(. != "")))
				  | map({(.[-1]): (.[3] | tonumber)}) | add // {}) as $by
				| {server: $server, readers: $n, rep: $rep, strace: true, calls: ($by.total // 0), gbit: ($bytes * 8 / 1e9),
				   calls_per_gbit: (if $bytes > 0 then (($by.total // 0) / ($bytes * 8 / 1e9) | round) else null end),
				   by_call: $by}' >>"$RESULTS"
			tail -n 1 "$RESULTS" | jq -r '"   strace -c -f: \(.calls) calls for \(.gbit * 1000 | round) Mbit sent, \(.calls_per_gbit) per Gbit: \(.by_call | to_entries | map("\(.key) \(.value)") | join(", "))"' >&2
		fi
		stop_and_forget "$reader_pid" "$PUB_PID" "$SERVER_PID"
	done
done
cleanup
log "results: $RESULTS"

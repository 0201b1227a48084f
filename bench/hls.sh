#!/usr/bin/env bash
# HLS cost per stream: STREAMS copies of the 720p30 3 Mbit/s test clip are
# published over RTMP; first nobody reads them (window A), then one ffmpeg
# LL-HLS reader per stream keeps each stream's muxer busy (window B).
# Reports, per rep, the agent's CPU seconds and max RSS in each window and
# (B - A) / STREAMS: the memory and CPU one LL-HLS muxer (with its
# 7-segment window in memory and one reader) costs.
#   make build && bench/hls.sh            # STREAMS=3 REPS=2 WINDOW=20
set -euo pipefail
STREAMS=${STREAMS:-3}
REPS=${REPS:-2}
WINDOW=${WINDOW:-20}
CACHE=${CACHE:-$HOME/.cache/relaymesh-bench}
OUT=${OUT:-/tmp/relaymesh-bench-hls}
BASE_PORT=${BASE_PORT:-27100}
RTMP_PORT=$((BASE_PORT + 1))
source "$(dirname "$0")/lib.sh"
cleanup() { stop_all; }
bench_setup
need_tools ffmpeg curl
if [ -z "${RELAYMESH_BIN:-}" ]; then
	go build -o bin/relaymesh ./cmd/relaymesh
	RELAYMESH_BIN=$ROOT/bin/relaymesh
fi
ensure_clip

# cpu_s PID: utime+stime seconds of PID; rss_kb PID: its VmRSS in kB
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
# window PID SECONDS: sample RSS each second; prints "cpu_seconds max_rss_kb"
window() {
	local c0 c1 max=0 r
	c0=$(cpu_s "$1")
	for _ in $(seq "$2"); do
		sleep 1
		r=$(rss_kb "$1")
		[ "$r" -gt "$max" ] && max=$r
	done
	c1=$(cpu_s "$1")
	echo "$(echo "$c1 - $c0" | bc -l) $max"
}

for rep in $(seq "$REPS"); do
	dir=$OUT/rep$rep
	rm -rf "$dir"
	start_relaymesh_conf "$dir" "" < <(printf '[srt]\nlisten = ""\n')
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$((BASE_PORT + 3))/healthz" >/dev/null && break; sleep 0.1; done
	pubs=()
	for i in $(seq "$STREAMS"); do
		start_ffmpeg_loop "$dir/pub$i.log" "$CLIP" -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/s$i"
		pubs+=("$PUB_PID")
	done
	sleep 5
	read -r cpuA rssA < <(window "$SERVER_PID" "$WINDOW")
	readers=()
	for i in $(seq "$STREAMS"); do
		ffmpeg -hide_banner -loglevel error -nostdin -i "http://127.0.0.1:$((BASE_PORT + 2))/live/s$i/index.m3u8" -c copy -f null - >"$dir/read$i.log" 2>&1 &
		readers+=("$!")
		PIDS+=("$!")
	done
	sleep 10 # the muxers fill their 7-segment windows (2 s GOP)
	read -r cpuB rssB < <(window "$SERVER_PID" "$WINDOW")
	perMB=$(echo "($rssB - $rssA) / $STREAMS / 1024" | bc -l)
	perCPU=$(echo "($cpuB - $cpuA) / $STREAMS / $WINDOW * 100" | bc -l)
	printf 'rep %d: %d streams, %ds windows: no readers cpu %.2fs rss %d kB | one LL-HLS reader each cpu %.2fs rss %d kB | per HLS stream: %.1f MB, %.2f %% of a core\n' \
		"$rep" "$STREAMS" "$WINDOW" "$cpuA" "$rssA" "$cpuB" "$rssB" "$perMB" "$perCPU" | tee -a "$RESULTS"
	for p in "${readers[@]}" "${pubs[@]}"; do stop_and_forget "$p"; done
	stop_and_forget "$SERVER_PID"
done

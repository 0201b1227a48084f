#!/usr/bin/env bash
# Cost per browser-protocol reader: one 720p30 ~3 Mbit/s H.264 + AAC
# stream (the fan-out clip, ffmpeg -re -c copy over RTMP) read by N
# LL-HLS readers or N WHEP sessions of bench/webreader, fresh relaymesh and
# publisher per run, cases alternating, REPS reps. Per run: the server's
# CPU seconds (utime+stime, /proc/PID/stat) alone and with its children
# (the AAC->Opus ffmpeg each WHEP reader with audio gets) over an idle
# phase and a window with N readers, max VmRSS of each, the load average.
#   make build && bench/readers.sh    # READERS="10 50" CASES="hls whep whep-video" REPS=2, ~10 min
set -euo pipefail
READERS=${READERS:-10 50}
CASES=${CASES:-hls whep whep-video}
REPS=${REPS:-2}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-8}
IDLE=${IDLE:-5}
PREROLL=${PREROLL:-8}
CACHE=${CACHE:-$HOME/.cache/relaymesh-bench}
OUT=${OUT:-/tmp/relaymesh-bench-readers/run-$(date +%Y%m%d-%H%M%S)}
BASE_PORT=${BASE_PORT:-27200}
RTMP_PORT=$((BASE_PORT + 1))
source "$(dirname "$0")/lib.sh"
cleanup() { stop_all; }
bench_setup
need_tools ffmpeg curl jq
build_binaries webreader
ensure_clip
HTTP=http://127.0.0.1:$((BASE_PORT + 2))

for rep in $(seq "$REPS"); do
	for n in $READERS; do
		for c in $CASES; do
			dir=$OUT/$c-$n-rep$rep
			rm -rf "$dir"
			start_relaymesh_conf "$dir" "" < <(printf '[srt]\nlisten = ""\n')
			for _ in $(seq 50); do curl -sf "http://127.0.0.1:$((BASE_PORT + 3))/healthz" >/dev/null && break; sleep 0.1; done
			start_ffmpeg_loop "$dir/pub.log" "$CLIP" -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/s"
			sleep "$PREROLL"
			case $c in
			hls) args=(-proto hls -url "$HTTP/live/s/index.m3u8") ;;
			whep) args=(-proto whep -url "$HTTP/live/s/whep") ;;
			whep-video) args=(-proto whep -audio=false -url "$HTTP/live/s/whep") ;;
			*) die "unknown case $c" ;;
			esac
			log "rep $rep: $c x $n (load $(cut -d' ' -f1-3 /proc/loadavg))"
			"$OUT/webreader" "${args[@]}" -n "$n" -idle "${IDLE}s" -warmup "${WARMUP}s" -duration "${DURATION}s" -pid "$SERVER_PID" \
				>"$dir/result.json" 2>"$dir/reader.log" || log "webreader failed: $(tail -3 "$dir/reader.log")"
			if [ -s "$dir/result.json" ]; then
				jq -c --arg case "$c" --argjson rep "$rep" '{case: $case, rep: $rep} + .' "$dir/result.json" >>"$RESULTS"
				jq -r --arg case "$c" '"\($case) n=\(.readers) ok=\(.ok) failed=\(.failed) dropped=\(.dropped) \(.mbit_per_s_per_reader) Mbit/s each | CPU s per reader-minute: self \(.cpu_self_s_per_reader_minute) tree \(.cpu_tree_s_per_reader_minute) | KiB per reader: self \(.rss_self_kib_per_reader) tree \(.rss_tree_kib_per_reader) | children \(.window.children) | load \(.loadavg)"' "$dir/result.json" >&2
			fi
			stop_and_forget "$PUB_PID" "$SERVER_PID"
		done
	done
done
log "results: $RESULTS"
jq -r -s -f "$ROOT/bench/readers.jq" "$RESULTS" | tee "$OUT/summary.md"

#!/usr/bin/env bash
# Glass-to-glass latency in headless Chromium, per transport of the web
# page (WHEP, LL-HLS, HTTP-FLV): ffmpeg draws its wall clock into each frame
# (bench/g2g explains the pattern) of a live 640x360 30 fps H.264 stream
# (x264 ultrafast/zerolatency, 1 s GOP, AAC audio) published over RTMP;
# Chromium plays /live/g2g/#TRANSPORT and reads the clock back from every
# presented frame. One JSON line per rep and transport in
# $OUT/results.jsonl (min/p10/p50/p90/max in ms; node_cpu_s: CPU seconds
# of the node and its children, e.g. the AAC -> Opus ffmpeg of a WHEP
# reader, while the transport was measured, publisher's ingest included).
#   bench/g2g.sh                  # REPS=3 DURATION=30 TRANSPORTS="whep ll-hls flv" AUDIO=1
# AUDIO=0 publishes video only (no AAC -> Opus child, nothing for the
# browser to lip-sync the video to).
# flv is the page's #flv mode: the node's /live/g2g.flv played by the
# vendored mpegts.js (MSE).
set -euo pipefail
REPS=${REPS:-3}
DURATION=${DURATION:-30}
TRANSPORTS=${TRANSPORTS:-"whep ll-hls flv"}
AUDIO=${AUDIO:-1}
CACHE=${CACHE:-$HOME/.cache/relaymesh-bench}
OUT=${OUT:-/tmp/relaymesh-bench-g2g}
BASE_PORT=${BASE_PORT:-27200}
RTMP_PORT=$((BASE_PORT + 1))
source "$(dirname "$0")/lib.sh"
cleanup() { stop_all; }
# tree_ticks PID: CPU time of PID, its children that ended (cutime,
# cstime) and those running, in clock ticks
tree_ticks() {
	local t p
	t=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}')
	for p in $(pgrep -P "$1"); do
		[ -r "/proc/$p/stat" ] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
	done
	echo "$t"
}
bench_setup
need_tools ffmpeg chromium curl
if [ -z "${RELAYMESH_BIN:-}" ]; then
	go build -o bin/relaymesh ./cmd/relaymesh
	RELAYMESH_BIN=$ROOT/bin/relaymesh
fi
go test -c -o "$OUT/g2g.test" ./bench/g2g

# the wall clock in ms mod 2^24 as 24 cells, bit 0 left; settb keeps
# microseconds so RTCTIME is not rounded to the frame rate
cells="if(between(Y\,16\,47)*between(X\,16\,591)\,16+219*mod(floor(floor(T*1000)/pow(2\,floor((X-16)/24)))\,2)\,128)"
vf="settb=1/1000000,setpts='RTCTIME',geq=lum='$cells':cb=128:cr=128,setpts=N/(30*TB),settb=1/30"

for rep in $(seq "$REPS"); do
	dir=$OUT/rep$rep
	rm -rf "$dir"
	start_relaymesh_conf "$dir" "" < <(printf '[srt]\nlisten = ""\n')
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$((BASE_PORT + 3))/healthz" >/dev/null && break; sleep 0.1; done
	audio=(-an)
	((AUDIO)) && audio=(-re -f lavfi -i "sine=frequency=440:sample_rate=48000" -c:a aac -b:a 64k)
	ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i "color=c=gray:s=640x360:r=30" "${audio[@]}" \
		-vf "$vf" -c:v libx264 -preset ultrafast -tune zerolatency -g 30 -b:v 1M \
		-f flv "rtmp://127.0.0.1:$RTMP_PORT/live/g2g" >"$dir/pub.log" 2>&1 &
	pub=$!
	PIDS+=("$pub")
	for tr in $TRANSPORTS; do
		log "rep $rep: $tr for ${DURATION}s (load $(cut -d' ' -f1-3 /proc/loadavg))"
		t0=$(tree_ticks "$SERVER_PID")
		line=$(G2G_URL="http://127.0.0.1:$((BASE_PORT + 2))/live/g2g/#$tr" G2G_TRANSPORT=$tr G2G_SECONDS=$DURATION \
			G2G_SCREENSHOT="$dir/$tr.png" "$OUT/g2g.test" -test.run TestGlassToGlass -test.v -test.timeout 5m 2>&1 |
			tee "$dir/$tr.log" | sed -n 's/^G2G //p')
		cpu=$(($(tree_ticks "$SERVER_PID") - t0))
		[ -n "$line" ] || { log "rep $rep $tr failed: $(tail -c 400 "$dir/$tr.log")"; continue; }
		jq -c --argjson rep "$rep" --argjson audio "$AUDIO" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson cpu "$cpu" \
			'. + {rep: $rep, audio: $audio, load: $load, node_cpu_s: ($cpu / 100)} | del(.page_status)' <<<"$line" | tee -a "$RESULTS"
	done
	stop_and_forget "$pub" "$SERVER_PID"
done

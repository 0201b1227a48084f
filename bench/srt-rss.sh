#!/usr/bin/env bash
# RSS per SRT publisher with a heap profile: relaymesh with N SRT
# publishers (one ffmpeg, tee muxer, the SRT benchmark's 3 Mbit/s TS clip,
# latency 120 ms), no reader. Prints the RSS before the first publisher,
# the maximum over WINDOW s after SETTLE s, (max - before) / N, the Go
# runtime's heap figures and the heap profile's top (from the API's
# pprof), and keeps smaps_rollup and the profile in OUT.
#
# Usage: bench/srt-rss.sh [BINARY]   (default bin/relaymesh; run
# bench/srt.sh once first: it makes the clip)
# Knobs: N=20 SETTLE=15 WINDOW=10 BASE_PORT=42000 (SRT; API +3)
#        CACHE=/tmp/relaymesh-bench OUT=/tmp/relaymesh-bench/srt-rss-DATE
set -euo pipefail
BIN=${1:-bin/relaymesh}
N=${N:-20}
SETTLE=${SETTLE:-15}
WINDOW=${WINDOW:-10}
BASE_PORT=${BASE_PORT:-42000}
CACHE=${CACHE:-/tmp/relaymesh-bench}
OUT=${OUT:-$CACHE/srt-rss-$(date +%Y%m%d-%H%M%S)}
TSCLIP=$CACHE/clip-720p30-3M-gop2s-v1.ts
[ -s "$TSCLIP" ] || { echo "no $TSCLIP: run bench/srt.sh once" >&2; exit 1; }
mkdir -p "$OUT/data"
cat >"$OUT/relaymesh.toml" <<TOML
version = 1
[node]
name = "bench"
data_dir = "$OUT/data"
log_level = "warn"
[rtmp]
listen = "127.0.0.1:$((BASE_PORT + 1))"
[http]
listen = "127.0.0.1:$((BASE_PORT + 2))"
[api]
listen = "127.0.0.1:$((BASE_PORT + 3))"
[webrtc]
udp_listen = "127.0.0.1:$((BASE_PORT + 5))"
[srt]
listen = "127.0.0.1:$BASE_PORT"
latency = "120ms"
TOML
API=http://127.0.0.1:$((BASE_PORT + 3))
"$BIN" run -c "$OUT/relaymesh.toml" >"$OUT/stdout.log" 2>&1 &
SP=$!
FP=
trap 'kill $FP $SP 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "$API/healthz" && break; sleep 0.1; done
sleep 1
rss() { awk '/^VmRSS/ {print $2}' "/proc/$SP/status"; }
before=$(rss)
outs=
for ((i = 0; i < N; i++)); do
	outs+="${outs:+|}[f=mpegts:onfail=ignore]srt://127.0.0.1:$BASE_PORT?pkt_size=1316&latency=120000&streamid=publish:live/b$i"
done
ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$TSCLIP" -map 0 -c copy -f tee "$outs" >"$OUT/ffmpeg.log" 2>&1 &
FP=$!
sleep "$SETTLE"
live=$(curl -s "$API/v1/streams" | jq '.streams | length')
if [ "$live" != "$N" ]; then
	echo "only $live of $N publishers are live (see $OUT/ffmpeg.log): no per-publisher figure" >&2
	exit 1
fi
top=0
for _ in $(seq "$WINDOW"); do
	r=$(rss)
	((r > top)) && top=$r
	sleep 1
done
cp "/proc/$SP/smaps_rollup" "$OUT/smaps_rollup"
curl -s "$API/debug/pprof/heap" >"$OUT/heap.pb.gz"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg); $N publishers: RSS before $before KiB, max $top KiB, per publisher $(((top - before) / N)) KiB"
curl -s "$API/debug/pprof/heap?debug=1" | grep -E '^# (HeapInuse|HeapSys|HeapIdle|HeapReleased|Stack|NextGC) = '
grep -E '^(Rss|Anonymous):' "$OUT/smaps_rollup"
go tool pprof -top -sample_index=inuse_space "$OUT/heap.pb.gz" 2>/dev/null | sed -n '6,12p'
echo "kept in $OUT"

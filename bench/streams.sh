#!/usr/bin/env bash
# Many streams, memory per stream (issue 15 goal 4): STREAMS publishers
# (ffmpeg -re -c copy of a clip encoded once), then one light reader per
# stream (RTMP only), on each server in turn, REPS times, servers
# alternating. Per run: the server's RSS idle (no publisher), with the
# publishers (max over SAMPLE s after SETTLE s), with the readers, CPU
# seconds over those phases, what the readers got, and for relaymesh a heap
# profile with the publishers only and the Go runtime's heap, stack and GC
# goal figures (/metrics) idle, publishing and reading. RSS is reported as
# VmRSS and as RssAnon (VmRSS without file pages: the binary's text, which
# varies with the page cache); also the server's read(2) calls per stream and second
# over the publishers-only sample (/proc/PID/io syscr; nginx reads with
# recv(2), which syscr does not count).
#
# Usage: bench/streams.sh                      (from the repository root)
# Knobs (environment):
#   PROTO=rtmp        rtmp: 1 Mbit/s 640x360 FLV clip; srt: the 3 Mbit/s TS clip of srt.sh
#   STREAMS=100       publishers
#   REPS=2
#   SERVERS="nginx relaymesh"       (nginx is skipped for srt: it takes no SRT)
#   RELAYMESH_BIN=bin/relaymesh     built when unset; RELAYMESH_BASE=other binary
#                                   runs as server "relaymesh-base" (e.g. land's)
#   SETTLE=12 SAMPLE=8 READ=10      seconds
#   BASE_PORT=29450  OUT, CACHE as in fanout.sh
#   ONE_PROCESS=1     rtmp only: all publishers in one bench/rtmppub and all
#                     readers in one bench/rtmpreader -streams (1,000 ffmpeg
#                     processes would need ~5 cores and ~50 GB); per run also
#                     readers at the full rate (>= 95 % of 30 fps x window),
#                     the publisher's and the reader's own CPU
#   BITRATE=1M        clip: 1M (640x360) or 300k (426x240, 250k video + 48k AAC)
#   PUB_BATCH=40ms    rtmppub -batch; READ_PAUSE=50ms  rtmpreader -read-pause
#   PROFILE=0         1: a CPU profile of relaymesh over the readers' window
#                     (cpu-TAG.pprof, top in cpu-TAG.top.txt) and a heap
#                     profile half way through it (heap-read-TAG.pprof); they
#                     cost the server some CPU, so CPU figures of such runs
#                     are not clean
#
#   ONE_PROCESS=1 STREAMS=1000 BITRATE=300k bench/streams.sh
# Needs: go, ffmpeg (with libsrt for srt), nginx + libnginx-mod-rtmp, jq, curl.
set -euo pipefail

PROTO=${PROTO:-rtmp}
ONE_PROCESS=${ONE_PROCESS:-0}
BITRATE=${BITRATE:-1M}
PUB_BATCH=${PUB_BATCH:-40ms}
PROFILE=${PROFILE:-0}
READ_PAUSE=${READ_PAUSE:-50ms}
STREAMS=${STREAMS:-100}
REPS=${REPS:-2}
SERVERS=${SERVERS:-"nginx relaymesh"}
SETTLE=${SETTLE:-12}
SAMPLE=${SAMPLE:-8}
READ=${READ:-10}
BASE_PORT=${BASE_PORT:-29450}
CACHE=${CACHE:-/tmp/relaymesh-bench}
OUT=${OUT:-$CACHE/streams-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
cleanup() { stop_all; }
bench_setup
need_tools go ffmpeg jq curl
case " $SERVERS " in *" nginx "*) [ "$PROTO" = srt ] || need_tools nginx ;; esac
build_binaries rtmpreader
if [ "$ONE_PROCESS" = 1 ]; then
	[ "$PROTO" = rtmp ] || die "ONE_PROCESS=1 is for PROTO=rtmp"
	go build -o "$OUT/rtmppub" ./bench/rtmppub
fi

case $BITRATE in
1M) CLIP1M=$CACHE/clip-360p30-1M-gop2s-v1.flv clip_args="640x360 900k 96k" ;;
300k) CLIP1M=$CACHE/clip-240p30-300k-gop2s-v1.flv clip_args="426x240 250k 48k" ;;
*) die "BITRATE=$BITRATE: want 1M or 300k" ;;
esac
# shellcheck disable=SC2086 # clip_args is three words
[ "$PROTO" != rtmp ] || encode_clip "$CLIP1M" $clip_args
TSCLIP=$CACHE/clip-720p30-3M-gop2s-v1.ts
if [ "$PROTO" = srt ] && [ ! -s "$TSCLIP" ]; then
	ensure_clip
	ffmpeg -hide_banner -loglevel error -y -i "$CLIP" -c copy -f mpegts "$TSCLIP"
fi

RTMP_PORT=$((BASE_PORT + 1))
SRT_PORT=$((BASE_PORT + 4))
API_ADDR=127.0.0.1:$((BASE_PORT + 3))

# tree_sum PID FILE AWK: the number AWK prints from /proc/P/FILE, summed
# over PID and its children (nginx master + worker).
tree_sum() {
	local sum=0 p v
	for p in $1 $(pgrep -P "$1" || true); do
		v=$(awk "$3" "/proc/$p/$2" 2>/dev/null || echo 0)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}
rss_kib() { tree_sum "$1" status '/^VmRSS:/ {print $2}'; }                  # VmRSS, KiB
anon_kib() { tree_sum "$1" status '/^RssAnon:/ {print $2}'; }              # RssAnon, KiB (no file pages)
cpu_ticks() { tree_sum "$1" stat '{sub(/.*\) /, ""); print $12 + $13}'; } # utime+stime
syscr() { tree_sum "$1" io '/^syscr:/ {print $2}'; } # read(2)-family calls (not recv/recvfrom: nginx's)
# max_rss PID SECONDS: the largest VmRSS and the largest RssAnon sampled
# once a second ("RSS ANON", KiB).
max_rss() {
	local m=0 a=0 r i
	for ((i = 0; i < $2; i++)); do
		r=$(rss_kib "$1")
		((r > m)) && m=$r
		r=$(anon_kib "$1")
		((r > a)) && a=$r
		sleep 1
	done
	echo "$m $a"
}

start_server() { # start_server NAME TAG
	case $1 in
	nginx)
		local dir=$OUT/$2
		mkdir -p "$dir/logs"
		sed -e "s#@PORT@#$RTMP_PORT#g; s#@PREFIX@#$dir#g" bench/nginx-rtmp.conf.tmpl >"$dir/nginx.conf"
		nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
		SERVER_PID=$!
		PIDS+=("$SERVER_PID")
		;;
	relaymesh | relaymesh-base)
		local bin=$RELAYMESH_BIN
		[ "$1" = relaymesh-base ] && bin=$RELAYMESH_BASE
		RELAYMESH_BIN=$bin start_relaymesh_conf "$OUT/$2" "" <<EOF
[srt]
listen = "127.0.0.1:$SRT_PORT"
EOF
		;;
	*) die "unknown server $1" ;;
	esac
}

PUBS=()
start_publishers() {
	local i
	PUBS=()
	if [ "$ONE_PROCESS" = 1 ]; then
		"$OUT/rtmppub" -url "rtmp://127.0.0.1:$RTMP_PORT/live/s%d" -streams "$STREAMS" -clip "$CLIP1M" \
			-batch "$PUB_BATCH" >"$OUT/pub-$tag.json" 2>"$OUT/pub-$tag.log" &
		PUB_PID=$!
		PIDS+=("$PUB_PID")
		PUBS+=("$PUB_PID")
		return
	fi
	for ((i = 0; i < STREAMS; i++)); do
		if [ "$PROTO" = rtmp ]; then
			start_ffmpeg_loop "$OUT/pub-$i.log" "$CLIP1M" -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/s$i"
		else
			start_ffmpeg_loop "$OUT/pub-$i.log" "$TSCLIP" -f mpegts \
				"srt://127.0.0.1:$SRT_PORT?pkt_size=1316&latency=120000&streamid=publish:live/s$i"
		fi
		PUBS+=("$PUB_PID")
	done
}

load_line() { cut -d' ' -f1-3 /proc/loadavg; }

# go_stats: relaymesh's Go runtime figures from /metrics, as JSON (MB):
# what the RSS is made of (live heap, heap in use, goroutine stacks, the
# next GC's goal); null for nginx or when the scrape fails.
go_stats() {
	[ "$server" != nginx ] || { echo null; return; }
	curl -fsS "http://$API_ADDR/metrics" 2>/dev/null | awk '
		/^go_memstats_(heap_alloc|heap_inuse|stack_inuse|next_gc|sys)_bytes / { v[$1] = $2 }
		/^go_goroutines / { g = $2 }
		END {
			if (!("go_memstats_heap_inuse_bytes" in v)) { print "null"; exit }
			printf "{\"heap_alloc_mb\": %.1f, \"heap_inuse_mb\": %.1f, \"stack_inuse_mb\": %.1f, \"next_gc_mb\": %.1f, \"sys_mb\": %.1f, \"goroutines\": %d}\n",
				v["go_memstats_heap_alloc_bytes"] / 1048576, v["go_memstats_heap_inuse_bytes"] / 1048576,
				v["go_memstats_stack_inuse_bytes"] / 1048576, v["go_memstats_next_gc_bytes"] / 1048576,
				v["go_memstats_sys_bytes"] / 1048576, g
		}' || echo null
}

for ((rep = 1; rep <= REPS; rep++)); do
	for server in $SERVERS; do
		if [ "$server" = nginx ] && [ "$PROTO" = srt ]; then
			continue
		fi
		tag=$server-$PROTO-$STREAMS-r$rep
		log "run: $tag (load $(load_line))"
		start_server "$server" "$tag"
		wait_port "$RTMP_PORT" || die "$server did not start: $(tail -c 300 "$OUT/$tag/stdout.log" 2>/dev/null)"
		read -r rss0 anon0 < <(max_rss "$SERVER_PID" 3)
		go_idle=$(go_stats)
		start_publishers
		sleep "$SETTLE"
		c0=$(cpu_ticks "$SERVER_PID")
		r0=$(syscr "$SERVER_PID")
		pub_t0=0
		[ "$ONE_PROCESS" = 1 ] && pub_t0=$(cpu_ticks "$PUB_PID")
		read -r rss_pub anon_pub < <(max_rss "$SERVER_PID" "$SAMPLE")
		c1=$(cpu_ticks "$SERVER_PID")
		r1=$(syscr "$SERVER_PID")
		go_pub=$(go_stats)
		heap=
		if [ "$server" != nginx ]; then
			heap=$OUT/heap-$tag.pprof
			curl -fsS -o "$heap" "http://$API_ADDR/debug/pprof/heap?gc=1" || heap=
		fi
		readers=null rss_read=null anon_read=null cpu_read=null one=null
		prof_pid=
		if [ "$PROFILE" = 1 ] && [ "$server" != nginx ]; then
			(sleep 4 && curl -fsS -o "$OUT/cpu-$tag.pprof" "http://$API_ADDR/debug/pprof/profile?seconds=$((READ - 2))") &
			prof_pid=$!
			# the heap while the readers play (after a GC), half way through their window
			(sleep $((4 + READ / 2)) && curl -fsS -o "$OUT/heap-read-$tag.pprof" "http://$API_ADDR/debug/pprof/heap?gc=1") &
			prof_pid="$prof_pid $!"
		fi
		# the runtime's figures half way through the readers' window
		(sleep $((3 + READ / 2)) && go_stats >"$OUT/go-read-$tag.json") &
		go_pid=$!
		if [ "$ONE_PROCESS" = 1 ]; then
			# the publisher's own CPU over the publishers-only sample
			p1=$(cpu_ticks "$PUB_PID")
			"$OUT/rtmpreader" -url "rtmp://127.0.0.1:$RTMP_PORT/live/s%d" -streams "$STREAMS" -n 1 \
				-fps 30 -read-pause "$READ_PAUSE" -idle 0s -warmup 3s -duration "${READ}s" -pid "$SERVER_PID" \
				>"$OUT/read-$tag.json" 2>"$OUT/read-$tag.log" || true
			p2=$(cpu_ticks "$PUB_PID")
			stop_and_forget "${PUBS[@]}"
			one=$(jq -c --argjson p0 "$pub_t0" --argjson p1 "$p1" --argjson p2 "$p2" --argjson hz "$(getconf CLK_TCK)" \
				--argjson sample "$SAMPLE" --argjson rss0 "$rss0" --argjson anon0 "$anon0" --arg load "$(load_line)" \
				'{ok, failed, dropped, mbit_total: .mbit_per_s, window_s: .window_seconds,
				  full_rate: .frames.readers_full_rate, min_ratio: .frames.min_ratio, median_ratio: .frames.median_ratio,
				  short: .frames.short, server_cpu_s: .server.cpu_seconds, server_cpu_pct: .server.cpu_percent,
				  cpu_s_per_gbit: .server.cpu_seconds_per_gbit, rss_read_kib: .server.rssN_kib,
				  rss_read_above_idle_mb: ((.server.rssN_kib - $rss0) / 1024 * 10 | round / 10),
				  kib_per_stream_reading: ((.server.rssN_kib - $rss0) / .readers | round),
				  anon_read_above_idle_mb: ((.server.anonN_kib - $anon0) / 1024 * 10 | round / 10),
				  anon_kib_per_stream_reading: ((.server.anonN_kib - $anon0) / .readers | round),
				  reader_cpu_pct: (.self_cpu_seconds / .window_seconds * 100 | round), reader_rss_mb: (.self_rss_kib / 1024 | round),
				  pub_cpu_pct: (($p1 - $p0) / $hz / $sample * 100 | round), load_reading: $load,
				  errors}' "$OUT/read-$tag.json" 2>/dev/null || echo null)
			rss_read=$(jq '.server.rssN_kib // null' "$OUT/read-$tag.json" 2>/dev/null || echo null)
			anon_read=$(jq '.server.anonN_kib // null' "$OUT/read-$tag.json" 2>/dev/null || echo null)
			pub_json=$(cat "$OUT/pub-$tag.json" 2>/dev/null || true)
			one=$(jq -c --argjson pub "${pub_json:-null}" '. + {publisher: ($pub | if . then {connected, failed, dropped, errors, video_frames_sent, cpu_seconds, rss_kib} else null end)}' <<<"$one")
		elif [ "$PROTO" = rtmp ]; then
			rpids=()
			for ((i = 0; i < STREAMS; i++)); do
				"$OUT/rtmpreader" -url "rtmp://127.0.0.1:$RTMP_PORT/live/s$i" -n 1 -warmup 2s \
					-duration "${READ}s" >"$OUT/read-$tag-$i.json" 2>"$OUT/read-$tag-$i.log" &
				rpids+=($!)
				PIDS+=($!)
			done
			sleep 3
			c2=$(cpu_ticks "$SERVER_PID")
			read -r rss_read anon_read < <(max_rss "$SERVER_PID" $((READ - 2)))
			c3=$(cpu_ticks "$SERVER_PID")
			for p in "${rpids[@]}"; do
				wait "$p" || true
				forget_pid "$p"
			done
			readers=$(cat "$OUT"/read-"$tag"-*.json | jq -s '{ok: (map(.ok) | add), failed: (map(.failed) | add),
				dropped: (map(.dropped) | add), mbit_min: (map(.mbit_per_s) | min), mbit_median: (map(.mbit_per_s) | sort | .[length/2|floor]),
				mbit_total: (map(.mbit_per_s) | add)}')
			cpu_read=$(((c3 - c2)))
		fi
		wait "$go_pid" || true
		go_read=$(cat "$OUT/go-read-$tag.json" 2>/dev/null || true)
		# shellcheck disable=SC2086 # two pids
		[ -n "$prof_pid" ] && { wait $prof_pid || true; }
		stop_and_forget "${PUBS[@]}" "$SERVER_PID"
		jq -nc --arg lbl "$server" --arg proto "$PROTO" --argjson streams "$STREAMS" --argjson rep "$rep" \
			--argjson rss0 "$rss0" --argjson rss_pub "$rss_pub" --argjson rss_read "$rss_read" \
			--argjson anon0 "$anon0" --argjson anon_pub "$anon_pub" --argjson anon_read "$anon_read" \
			--argjson reads "$((r1 - r0))" --argjson cpu_pub "$((c1 - c0))" --argjson cpu_read "$cpu_read" --argjson sample "$SAMPLE" \
			--argjson readwin "$((READ - 2))" --argjson readers "$readers" --arg load "$(load_line)" --arg heap "$heap" \
			--argjson go_idle "${go_idle:-null}" --argjson go_pub "${go_pub:-null}" --argjson go_read "${go_read:-null}" \
			--argjson hz "$(getconf CLK_TCK)" --argjson one "$one" --arg bitrate "$BITRATE" \
			'{"label": $lbl, bitrate: $bitrate, one_process: $one, proto: $proto, streams: $streams, rep: $rep, load: $load,
			  rss_idle_kib: $rss0, rss_pub_kib: $rss_pub, rss_read_kib: $rss_read,
			  kib_per_stream: (($rss_pub - $rss0) / $streams | round),
			  kib_per_stream_reading: (if $rss_read then (($rss_read - $rss0) / $streams | round) else null end),
			  anon_idle_kib: $anon0, anon_pub_kib: $anon_pub, anon_read_kib: $anon_read,
			  anon_kib_per_stream: (($anon_pub - $anon0) / $streams | round),
			  anon_kib_per_stream_reading: (if $anon_read then (($anon_read - $anon0) / $streams | round) else null end),
			  cpu_pct_pub: ($cpu_pub / $hz / $sample * 100 | round),
			  reads_per_stream_s: ($reads / $sample / $streams * 10 | round / 10),
			  cpu_s_per_gbit_read: (if $readers then ($cpu_read / $hz) / ($readers.mbit_total * $readwin / 1000) * 100 | round / 100 else null end),
			  readers: $readers, heap: $heap, go: {idle: $go_idle, publishing: $go_pub, reading: $go_read}}' | tee -a "$RESULTS" >&2
	done
done
cleanup

{
	echo "# streams benchmark $(date -u +%FT%TZ): $PROTO, $STREAMS publishers, $(nproc) cores"
	echo
	echo "| server | rep | load 1/5/15 | RSS MB idle | RSS MB publishers | KiB per stream | RSS MB reading | KiB per stream reading | RssAnon MB above idle, publishers / reading | RssAnon KiB per stream, publishers / reading | CPU % publishers | read(2) per stream and s, publishers | readers ok/failed/dropped | Mbit/s per reader min/median | CPU s per Gbit read |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	jq -r '"| \(.label) | \(.rep) | \(.load) | \(.rss_idle_kib/1024|round) | \(.rss_pub_kib/1024|round) | \(.kib_per_stream) | \(if .rss_read_kib then (.rss_read_kib/1024|round) else "-" end) | \(.kib_per_stream_reading // "-") | \((.anon_pub_kib - .anon_idle_kib)/1024*10|round/10) / \(if .anon_read_kib then ((.anon_read_kib - .anon_idle_kib)/1024*10|round/10) else "-" end) | \(.anon_kib_per_stream) / \(.anon_kib_per_stream_reading // "-") | \(.cpu_pct_pub) | \(.reads_per_stream_s) | \(if .readers then "\(.readers.ok)/\(.readers.failed)/\(.readers.dropped)" else "-" end) | \(if .readers then "\(.readers.mbit_min)/\(.readers.mbit_median)" else "-" end) | \(.cpu_s_per_gbit_read // "-") |"' "$RESULTS"
	if [ "$ONE_PROCESS" = 1 ]; then
		echo
		echo "One publisher process (bench/rtmppub -batch $PUB_BATCH), one reader process (bench/rtmpreader -streams, -read-pause $READ_PAUSE), $BITRATE per stream, ${READ} s window:"
		echo
		echo "| server | rep | readers at full rate (>= 95 % of 30 fps) | frames min/median ratio | Mbit/s delivered | server CPU % | CPU s per delivered Gbit | RSS MB above idle, publishing / reading | KiB per stream, publishing / reading | RssAnon KiB per stream, publishing / reading | publisher CPU % / RSS MB | reader CPU % / RSS MB | load 1/5/15 after reading |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
		jq -r 'select(.one_process) | .one_process as $o | "| \(.label) | \(.rep) | \($o.full_rate // 0) of \(.streams) (ok \($o.ok // 0), failed \($o.failed // "-"), dropped \($o.dropped // "-")) | \($o.min_ratio)/\($o.median_ratio) | \($o.mbit_total) | \($o.server_cpu_pct) | \($o.cpu_s_per_gbit) | \((.rss_pub_kib - .rss_idle_kib)/1024|round) / \($o.rss_read_above_idle_mb) | \(.kib_per_stream) / \($o.kib_per_stream_reading) | \(.anon_kib_per_stream) / \($o.anon_kib_per_stream_reading) | \($o.pub_cpu_pct) / \(($o.publisher.rss_kib // 0)/1024|round) | \($o.reader_cpu_pct) / \($o.reader_rss_mb) | \($o.load_reading) |"' "$RESULTS"
	fi
	if jq -e 'select(.go.publishing != null)' "$RESULTS" >/dev/null 2>&1; then
		echo
		echo "Go runtime of relaymesh (/metrics; MB; idle / publishing / half way through reading): what the RssAnon is made of"
		echo
		echo "| server | rep | heap allocated (live and not yet collected) | heap in use (spans) | goroutine stacks | next GC goal | goroutines |"
		echo "|---|---|---|---|---|---|---|"
		jq -r 'select(.go.publishing != null) | .go as $g | def f(k): [$g.idle, $g.publishing, $g.reading] | map(if . then .[k] | tostring else "-" end) | join(" / ");
			"| \(.label) | \(.rep) | \(f("heap_alloc_mb")) | \(f("heap_inuse_mb")) | \(f("stack_inuse_mb")) | \(f("next_gc_mb")) | \(f("goroutines")) |"' "$RESULTS"
	fi
} | tee "$OUT/summary.md"
for f in "$OUT"/heap-*.pprof; do
	[ -s "$f" ] || continue
	go tool pprof -top -sample_index=inuse_space -nodecount=12 "$f" >"${f%.pprof}.top.txt" 2>/dev/null || true
done
for f in "$OUT"/cpu-*.pprof; do
	[ -s "$f" ] || continue
	go tool pprof -top -cum -nodecount=40 "$f" >"${f%.pprof}.top.txt" 2>/dev/null || true
done
log "results: $OUT"

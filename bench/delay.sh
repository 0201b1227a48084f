#!/usr/bin/env bash
# Delay one RTMP hop adds (issue 15 goal 1): bench/hopdelay publishes the
# 3 Mbit/s clip at its own rate and plays it back through the server; per
# video frame, arrival at the player minus the moment the publisher wrote
# it (the direct tee). Servers alternate, REPS reps, optionally with
# LOAD_READERS other light readers on the same stream; load average logged.
# The other readers also measure the server (rtmpreader -pid): its CPU and
# max RSS over their window, so delay is reported beside CPU and memory.
# A relaymesh server name ending in -httpflv (relaymesh-httpflv,
# relaymesh-coalesce20-httpflv) plays the measured frames over HTTP-FLV
# instead (the publisher and the other readers stay RTMP): the HTTP-FLV
# hop. nginx-rtmp has no HTTP-FLV output.
#
# Usage: bench/delay.sh   (from the repository root)
# Knobs: REPS=2 DURATION=20 LOAD_READERS=50
#        SERVERS="nginx relaymesh relaymesh-coalesce20 relaymesh-coalesce100"
#        (also relaymesh-httpflv, relaymesh-coalesceN-httpflv)
#        BASE_PORT=29550 RELAYMESH_BIN OUT CACHE as in fanout.sh
set -euo pipefail
REPS=${REPS:-2}
DURATION=${DURATION:-20}
LOAD_READERS=${LOAD_READERS:-50}
SERVERS=${SERVERS:-"nginx relaymesh relaymesh-coalesce20 relaymesh-coalesce100"}
BASE_PORT=${BASE_PORT:-29550}
CACHE=${CACHE:-/tmp/relaymesh-bench}
OUT=${OUT:-$CACHE/delay-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
cleanup() { stop_all; }
bench_setup
need_tools go ffmpeg jq nginx
build_binaries rtmpreader
go build -o "$OUT/hopdelay" ./bench/hopdelay
ensure_clip

for ((rep = 1; rep <= REPS; rep++)); do
	for server in $SERVERS; do
		tag=$server-r$rep
		case $server in
		nginx)
			RTMP_PORT=$BASE_PORT
			dir=$OUT/$tag
			mkdir -p "$dir/logs"
			sed -e "s#@PORT@#$RTMP_PORT#g; s#@PREFIX@#$dir#g" bench/nginx-rtmp.conf.tmpl >"$dir/nginx.conf"
			nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
			SERVER_PID=$!
			PIDS+=("$SERVER_PID")
			;;
		relaymesh*)
			RTMP_PORT=$((BASE_PORT + 1))
			wc=0s
			base=${server%-httpflv}
			case $base in relaymesh-coalesce*) wc=${base#relaymesh-coalesce}ms ;; esac
			start_relaymesh_conf "$OUT/$tag" "" <<EOC
[srt]
listen = ""
[limits]
write_coalesce = "$wc"
EOC
			;;
		*) die "unknown server $server" ;;
		esac
		wait_port "$RTMP_PORT" || die "$server does not listen on $RTMP_PORT"
		url=rtmp://127.0.0.1:$RTMP_PORT/live/delay
		play=$url
		case $server in *-httpflv) play=http://127.0.0.1:$((BASE_PORT + 2))/live/delay.flv ;; esac
		load=()
		log "run: $tag, $LOAD_READERS other readers (load $(cut -d' ' -f1-3 /proc/loadavg))"
		"$OUT/hopdelay" -url "$url" -play "$play" -clip "$CLIP" -duration "${DURATION}s" -label "$server" \
			>"$OUT/hop-$tag.json" 2>"$OUT/hop-$tag.log" &
		hp=$!
		PIDS+=("$hp")
		if ((LOAD_READERS > 0)); then
			"$OUT/rtmpreader" -url "$url" -n "$LOAD_READERS" -wait-live 10s -idle 1s -warmup 1s -pid "$SERVER_PID" \
				-duration "$((DURATION - 5))s" >"$OUT/load-$tag.json" 2>"$OUT/load-$tag.log" &
			load=($!)
			PIDS+=("${load[@]}")
		fi
		wait "$hp" || log "hopdelay failed: $(tail -c 300 "$OUT/hop-$tag.log")"
		forget_pid "$hp"
		for p in "${load[@]}"; do
			wait "$p" || true
			forget_pid "$p"
		done
		stop_and_forget "$SERVER_PID"
		[ -s "$OUT/hop-$tag.json" ] && jq -c --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson rep "$rep" \
			--argjson others "$(jq -c '{ok, failed, dropped, mbit_per_s_per_reader, cpu_percent: .server.cpu_percent, rss_mb: ((.server.rssN_kib // 0) / 1024 | round)}' "$OUT/load-$tag.json" 2>/dev/null || echo null)" \
			'. + {rep: $rep, load: $load, others: $others}' "$OUT/hop-$tag.json" | tee -a "$RESULTS" >&2
	done
done
cleanup
{
	echo "# hop delay $(date -u +%FT%TZ), $(nproc) cores, ${DURATION}s per run, $LOAD_READERS other readers"
	echo
	echo "| server | rep | load 1/5/15 | frames matched/sent | p50 ms | p95 ms | p99 ms | max ms | other readers ok/failed/dropped | server CPU % | server RSS MB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	jq -r '"| \(.label) | \(.rep) | \(.load) | \(.video_frames_matched)/\(.video_frames_sent) | \(.p50_ms) | \(.p95_ms) | \(.p99_ms) | \(.max_ms) | \(if .others then "\(.others.ok)/\(.others.failed)/\(.others.dropped) | \(.others.cpu_percent) | \(.others.rss_mb)" else "- | - | -" end) |"' "$RESULTS"
} | tee "$OUT/summary.md"
log "results: $OUT"

#!/usr/bin/env bash
# Fan-out benchmark: one ~3 Mbit/s H.264 + AAC stream (ffmpeg lavfi
# testsrc2, 2 s GOP, published with -re) fanned out to N RTMP readers, by
# relaymesh and by nginx with its RTMP module, one server at a time, on
# loopback. For each (server, N) it reports the server's CPU seconds per
# delivered Gbit and its RSS per extra reader, then the relaymesh/nginx
# ratios.
#
# Usage: bench/fanout.sh            (from the repository root)
# Knobs (environment):
#   READERS="50 200 400"   reader counts
#   DURATION=15            measurement window, seconds (SECONDS is bash's own)
#   WARMUP=5               seconds between the last reader connecting and the window
#   IDLE=3                 seconds of server CPU and RSS measured with the publisher only
#   PREROLL=30             seconds one probe reader plays before the idle phase, so
#                          relaymesh's GOP cache is in steady state and
#                          its RSS at 0 readers is the steady one
#   NGINX_PREROLL=5        the same for nginx, which keeps no ring
#   SERVERS="nginx relaymesh relaymesh-gmp1"   relaymesh-gmp1 runs with GOMAXPROCS=1;
#                          relaymesh-base runs RELAYMESH_BASE (another build, e.g. main's)
#   REPS=1                 repetitions; each runs every N with the servers alternating,
#                          and each run's load average is logged and kept in results.jsonl
#   BASE_PORT=29350        nginx: BASE_PORT; relaymesh: BASE_PORT+1..+3
#   RELAYMESH_BIN=bin/relaymesh   built from ./cmd/relaymesh when unset
#   WRITE_COALESCE=0s      relaymesh's limits.write_coalesce (players get packets at most
#                          once per window; 0s = at once)
#   PROFILE=1              CPU profile of relaymesh at the largest N (needs pprof on its API)
#   PROFILE_READERS=N      profile at this N instead of the largest
#   OUT=/tmp/relaymesh-bench/run-DATE   where results.jsonl, logs and profiles go
#   CACHE=/tmp/relaymesh-bench          where the encoded test clip is kept
# Needs: go, ffmpeg, nginx + libnginx-mod-rtmp, jq.
set -euo pipefail

READERS=${READERS:-"50 200 400"}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
IDLE=${IDLE:-3}
PREROLL=${PREROLL:-30}
NGINX_PREROLL=${NGINX_PREROLL:-5}
SERVERS=${SERVERS:-"nginx relaymesh relaymesh-gmp1"}
REPS=${REPS:-1}
BASE_PORT=${BASE_PORT:-29350}
PROFILE=${PROFILE:-1}
CACHE=${CACHE:-/tmp/relaymesh-bench}
OUT=${OUT:-$CACHE/run-$(date +%Y%m%d-%H%M%S)}
NGINX_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
cleanup() { stop_all; }
bench_setup

need_tools go ffmpeg nginx jq curl
[ -f "$NGINX_MODULE" ] || die "$NGINX_MODULE is missing: apt-get install libnginx-mod-rtmp"

build_binaries rtmpreader
ensure_clip

# --- servers -------------------------------------------------------------
RTMP_PORT=
API_ADDR=

start_nginx() {
	local dir=$OUT/nginx-$1
	mkdir -p "$dir/logs"
	RTMP_PORT=$BASE_PORT
	sed -e "s#@PORT@#$RTMP_PORT#g; s#@PREFIX@#$dir#g" bench/nginx-rtmp.conf.tmpl >"$dir/nginx.conf"
	nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	API_ADDR=
}

start_relaymesh() { # start_relaymesh TAG GOMAXPROCS|""
	RTMP_PORT=$((BASE_PORT + 1))
	API_ADDR=127.0.0.1:$((BASE_PORT + 3))
	start_relaymesh_conf "$OUT/$1" "$2" <<EOF
[srt]
listen = ""
[limits]
write_coalesce = "${WRITE_COALESCE:-0s}"
EOF
}

start_server() { # start_server NAME N
	case $1 in
	nginx) start_nginx "$2" ;;
	relaymesh) start_relaymesh "relaymesh-$2" "" ;;
	relaymesh-gmp1) start_relaymesh "relaymesh-gmp1-$2" 1 ;;
	relaymesh-base)
		[ -x "${RELAYMESH_BASE:-}" ] || die "relaymesh-base needs RELAYMESH_BASE=/path/to/relaymesh"
		RELAYMESH_BIN=$RELAYMESH_BASE start_relaymesh "relaymesh-base-$2" ""
		;;
	*) die "unknown server $1 (want nginx, relaymesh, relaymesh-gmp1 or relaymesh-base)" ;;
	esac
}

start_publisher() { # start_publisher LOGFILE
	start_ffmpeg_loop "$1" "$CLIP" -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/bench"
}

# --- runs ------------------------------------------------------------------
max_n=0
for n in $READERS; do ((n > max_n)) && max_n=$n; done
prof_n=${PROFILE_READERS:-$max_n}

for rep in $(seq "$REPS"); do
for n in $READERS; do
	for server in $SERVERS; do
		log "run $rep: $server with $n readers (window ${DURATION}s, load $(cut -d' ' -f1-3 /proc/loadavg))"
		start_server "$server" "$n"
		start_publisher "$OUT/ffmpeg-$server-$n.log"
		prof_pid=
		if [ "$PROFILE" = 1 ] && [ "$n" = "$prof_n" ] && [ -n "$API_ADDR" ]; then
			# Start the profile so that it covers the measurement window:
			# the reader waits for the stream, idles, connects and warms up first.
			(
				for ((i = 0; i < 100; i++)); do
					curl -fsS -o /dev/null "http://$API_ADDR/debug/pprof/" 2>/dev/null && break
					sleep 0.1
				done
				if ! curl -fsS -o /dev/null "http://$API_ADDR/debug/pprof/" 2>/dev/null; then
					echo "no /debug/pprof/ on the API listener $API_ADDR" >"$OUT/cpu-$server-$n-r$rep.missing"
					exit 0
				fi
				for ((i = 0; i < (PREROLL + IDLE + WARMUP + 120) * 5; i++)); do
					[ -e "$OUT/window-$server-$n" ] && break
					sleep 0.2
				done
				[ -e "$OUT/window-$server-$n" ] || exit 0
				curl -fsS -o "$OUT/cpu-$server-$n-r$rep.pprof" \
					"http://$API_ADDR/debug/pprof/profile?seconds=$((DURATION - 1))" || true
				curl -fsS -o "$OUT/heap-$server-$n-r$rep.pprof" "http://$API_ADDR/debug/pprof/heap" || true
			) &
			prof_pid=$!
			PIDS+=("$prof_pid")
		fi
		preroll=$PREROLL
		extra=()
		if [ "$server" = nginx ]; then
			preroll=$NGINX_PREROLL
		else
			extra=(-pprof "http://$API_ADDR")
		fi
		# In the background so that a signal reaches our trap at once.
		"$OUT/rtmpreader" -url "rtmp://127.0.0.1:$RTMP_PORT/live/bench" -n "$n" \
			-wait-live 20s -preroll "${preroll}s" -idle "${IDLE}s" -warmup "${WARMUP}s" -duration "${DURATION}s" \
			-pid "$SERVER_PID" -label "$server" -mark "$OUT/window-$server-$n" "${extra[@]}" \
			>"$OUT/run.json" 2>"$OUT/reader-$server-$n.log" &
		reader_pid=$!
		PIDS+=("$reader_pid")
		if ! wait "$reader_pid"; then
			log "reader failed for $server/$n: $(tail -c 300 "$OUT/reader-$server-$n.log")"
		fi
		forget_pid "$reader_pid"
		[ -s "$OUT/run.json" ] && jq -c --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson rep "$rep" \
			'. + {rep: $rep, load: $load}' "$OUT/run.json" >>"$RESULTS"
		rm -f "$OUT/run.json" "$OUT/window-$server-$n"
		[ -n "$prof_pid" ] && { wait "$prof_pid" 2>/dev/null || true; forget_pid "$prof_pid"; }
		stop_and_forget "$PUB_PID" "$SERVER_PID"
		tail -n 1 "$RESULTS" | jq -r '"   \(.label) rep=\(.rep) load=\(.load) n=\(.readers) ok=\(.ok) failed=\(.failed) dropped=\(.dropped) \(.mbit_per_s) Mbit/s, cpu \(.server.cpu_seconds_per_gbit) s/Gbit, rss \(.server.rss_kib_per_reader) KiB/reader"' >&2 || true
	done
done
done
cleanup

# --- summary -----------------------------------------------------------------
{
	echo "# fan-out benchmark $(date -u +%FT%TZ), $(nproc) cores, window ${DURATION}s, warmup ${WARMUP}s"
	echo
	echo "| rep | load | server | readers | ok/failed/dropped | delivered Mbit/s | server CPU % | CPU s per Gbit | kernel share | RSS KiB at 0 | RSS KiB at N | RSS KiB per reader | Go heap+stack KiB per reader | idle CPU % |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	jq -r '"| \(.rep) | \(.load) | \(.label) | \(.readers) | \(.ok)/\(.failed)/\(.dropped) | \(.mbit_per_s) | \(.server.cpu_percent) | \(.server.cpu_seconds_per_gbit) | \(if .server.cpu_seconds > 0 then (100 * .server.sys_seconds / .server.cpu_seconds | round | tostring) + "%" else "n/a" end) | \(.server.rss0_kib) | \(.server.rssN_kib) | \(.server.rss_kib_per_reader) | \(.server.go_live_kib_per_reader // "-") | \(.server.idle_cpu_percent) |"' "$RESULTS"
	echo
	echo "Ratios relaymesh / nginx (issue 15's targets: CPU per Gbit <= 0.8 at write_coalesce 0s; RSS per reader <= 28 KiB):"
	echo
	echo "| rep | server | readers | CPU per Gbit ratio | RSS per reader ratio | RSS per reader KiB (target <= 28) |"
	echo "|---|---|---|---|---|---|"
	jq -rs '
		(map(select(.label == "nginx")) | map({key: "\(.rep)/\(.readers)", value: .}) | from_entries) as $ngx
		| .[] | select(.label != "nginx") | . as $r | $ngx["\($r.rep)/\($r.readers)"] as $n
		| select($n != null)
		| def ratio(a; b): if (b // 0) > 0 then ((a / b) * 100 | round / 100 | tostring) else "n/a" end;
		"| \($r.rep) | \($r.label) | \($r.readers) | \(ratio($r.server.cpu_seconds_per_gbit; $n.server.cpu_seconds_per_gbit)) | \(ratio($r.server.rss_kib_per_reader; $n.server.rss_kib_per_reader)) | \($r.server.rss_kib_per_reader) |"' "$RESULTS"
} | tee "$OUT/summary.md"
for f in "$OUT"/*.missing; do [ -e "$f" ] && log "profile: $(cat "$f")"; done
for f in "$OUT"/cpu-*.pprof; do
	[ -s "$f" ] || continue
	bin=$RELAYMESH_BIN
	case $f in */cpu-relaymesh-base-*) bin=$RELAYMESH_BASE ;; esac
	log "CPU profile: $f (go tool pprof -top $bin $f)"
	go tool pprof -top -nodecount=30 "$bin" "$f" >"${f%.pprof}.top.txt" 2>/dev/null || true
done
log "results: $OUT"

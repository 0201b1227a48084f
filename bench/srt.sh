#!/usr/bin/env bash
# SRT benchmark: one ~3 Mbit/s MPEG-TS stream (the fan-out benchmark's
# H.264 + AAC clip, remuxed once to TS, published with ffmpeg -re -c copy)
# relayed on loopback, one server at a time, by relaymesh and by
# srt-live-transmit (Debian srt-tools):
#
#   srt   SRT in -> N SRT readers. relaymesh: one listener, publish with
#         streamid=publish:live/b, read with streamid=read:live/b.
#         srt-live-transmit relays one input to one output and its listener
#         output takes a single caller (a second one is refused: "Listener's
#         backlog exceeded"), so N readers need N relay processes: for N in
#         SLT_READERS we run N of them, each fed its own copy of the stream
#         by one ffmpeg (tee muxer), and measure them together; for larger N
#         the summary gives N x the single relay's cost, labelled as an
#         estimate.
#   pubs  PUBLISHERS SRT publishers into one node (intake): one ffmpeg (tee
#         muxer) publishes its own copy of the stream to each of
#         streamid=publish:live/b0..b(N-1), and each stream gets one SRT
#         reader (read:live/bI). Measured twice: with the publishers only
#         (the reader's idle phase, INTAKE_IDLE s: intake CPU per ingested
#         Gbit and RSS per publisher above the server's RSS before any
#         publisher) and with the N readers (CPU per relayed Gbit).
#         srt-live-transmit: N relays, the same as its N-reader case.
#   rtmp  RTMP in -> SRT out: ffmpeg publishes the FLV clip over RTMP to
#         relaymesh, which remuxes FLV -> TS; RTMP_READERS SRT readers. The
#         peer cannot take RTMP: its figure is its plain SRT -> SRT relay of
#         the same content from the same run (remux+relay vs relay).
#
# The readers are bench/srtreader (libsrt callers in one process): bytes,
# per-reader bitrate, SRT receiver loss / retransmits / drops, and TS
# continuity-counter gaps. Server CPU is utime+stime of the server's
# process tree from /proc over the window; only the server is counted.
#
# Usage: bench/srt.sh            (from the repository root; ~4 min)
# Knobs (environment):
#   READERS="1 10 50"      SRT readers of relaymesh
#   SLT_READERS="1 10"     srt-live-transmit relay processes run for real
#   RTMP_READERS="1"       SRT readers of the RTMP-in case ("" skips it)
#   PUBLISHERS="20"        publishers of the intake case ("" skips it)
#   INTAKE_IDLE=10         seconds of the intake case's publishers-only phase
#   SERVERS="slt relaymesh"  also: relaymesh-gmp1 (GOMAXPROCS=1), and
#                          relaymesh-base (the binary RELAYMESH_BASE, another
#                          build, e.g. main's): SERVERS="slt relaymesh
#                          relaymesh-base" alternates the two builds case by
#                          case, rep by rep
#   REPS=1                 repetitions; each rep runs every case on every
#                          server, servers alternating case by case
#   DURATION=20            measurement window, seconds (SECONDS is bash's own)
#   WARMUP=5               seconds between the readers getting media and the window
#   IDLE=3                 seconds of server CPU and RSS with the publisher only
#   LATENCY=120            SRT latency, ms, for publisher, servers and readers
#   BASE_PORT=29450        relaymesh SRT on it, RTMP/HTTP/API +1..+3;
#                          srt-live-transmit outputs +100.., inputs +300..
#   SYSCTL=1               when root, raise net.core.rmem_default/rmem_max to
#                          8/16 MiB for the run (restored on exit)
#   RELAYMESH_BIN=bin/relaymesh   built from ./cmd/relaymesh when unset
#   RELAYMESH_BASE=               the relaymesh-base server's binary
#   OUT=/tmp/relaymesh-bench/srt-DATE   results.jsonl, summary.md, logs
#   CACHE=/tmp/relaymesh-bench          where the test clips are kept
# Needs: go, ffmpeg (with libsrt), srt-live-transmit (srt-tools), jq.
set -euo pipefail

READERS=${READERS:-"1 10 50"}
SLT_READERS=${SLT_READERS:-"1 10"}
RTMP_READERS=${RTMP_READERS-"1"}
PUBLISHERS=${PUBLISHERS-"20"}
INTAKE_IDLE=${INTAKE_IDLE:-10}
SERVERS=${SERVERS:-"slt relaymesh"}
REPS=${REPS:-1}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
IDLE=${IDLE:-3}
LATENCY=${LATENCY:-120}
BASE_PORT=${BASE_PORT:-29450}
SYSCTL=${SYSCTL:-1}
CACHE=${CACHE:-/tmp/relaymesh-bench}
OUT=${OUT:-$CACHE/srt-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
SYSCTL_RESTORE=()
cleanup() {
	local kv
	stop_all
	for kv in "${SYSCTL_RESTORE[@]}"; do
		sysctl -q -w "$kv" >/dev/null || log "could not restore $kv"
	done
	if [ "${#SYSCTL_RESTORE[@]}" -gt 0 ]; then
		log "restored ${SYSCTL_RESTORE[*]}"
	fi
	SYSCTL_RESTORE=()
}
bench_setup

need_tools go ffmpeg srt-live-transmit jq
ffmpeg -hide_banner -protocols 2>/dev/null | grep -qx ' *srt' || die "this ffmpeg has no SRT protocol (libsrt)"

# --- UDP buffers -------------------------------------------------------
# libsrt asks for large socket buffers, but the kernel caps them at
# net.core.rmem_max, and Debian's default (208 KiB) loses packets in the
# kernel at tens of Mbit/s.
RMEM_NOTE="net.core.rmem_default=$(cat /proc/sys/net/core/rmem_default) rmem_max=$(cat /proc/sys/net/core/rmem_max) (unchanged)"
if [ "$SYSCTL" = 1 ] && [ "$(id -u)" = 0 ]; then
	old_def=$(cat /proc/sys/net/core/rmem_default)
	old_max=$(cat /proc/sys/net/core/rmem_max)
	if ((old_def < 8388608 || old_max < 16777216)); then
		SYSCTL_RESTORE=("net.core.rmem_default=$old_def" "net.core.rmem_max=$old_max")
		sysctl -q -w net.core.rmem_max=$((old_max > 16777216 ? old_max : 16777216)) >/dev/null
		sysctl -q -w net.core.rmem_default=$((old_def > 8388608 ? old_def : 8388608)) >/dev/null
		RMEM_NOTE="net.core.rmem_default=$(cat /proc/sys/net/core/rmem_default) rmem_max=$(cat /proc/sys/net/core/rmem_max) for the run (were $old_def / $old_max, restored on exit)"
	fi
fi
log "UDP buffers: $RMEM_NOTE"

build_binaries srtreader

# --- the test clips: the fan-out benchmark's FLV clip (lib.sh) and its TS
# remux, made once: both servers get the very same H.264 + AAC.
ensure_clip
TSCLIP=$CACHE/clip-720p30-3M-gop2s-v1.ts
if [ ! -s "$TSCLIP" ] || [ "$TSCLIP" -ot "$CLIP" ]; then
	log "remuxing the clip to MPEG-TS (once): $TSCLIP"
	ffmpeg -hide_banner -loglevel error -y -i "$CLIP" -c copy -f mpegts "$TSCLIP.tmp"
	mv "$TSCLIP.tmp" "$TSCLIP"
fi

SRT_PORT=$BASE_PORT
RTMP_PORT=$((BASE_PORT + 1))
SLT_OUT=$((BASE_PORT + 100))
SLT_IN=$((BASE_PORT + 300))
LAT_US=$((LATENCY * 1000))

case " $SERVERS " in *" relaymesh-base "*)
	[ -x "${RELAYMESH_BASE:-}" ] || die "server relaymesh-base needs RELAYMESH_BASE=/path/to/relaymesh (an executable)"
	;;
esac

start_relaymesh() { # start_relaymesh DIR GOMAXPROCS|"" [BINARY]
	RELAYMESH_BIN=${3:-$RELAYMESH_BIN} start_relaymesh_conf "$1" "$2" <<EOF
[srt]
listen = "127.0.0.1:$SRT_PORT"
latency = "${LATENCY}ms"
EOF
}

# start_slt DIR N: N srt-live-transmit relays under one subshell (whose
# tree the reader measures), relay i from SLT_IN+i to SLT_OUT+i.
start_slt() {
	local dir=$1 n=$2
	mkdir -p "$dir"
	(
		trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM
		for ((i = 0; i < n; i++)); do
			srt-live-transmit -q \
				"srt://127.0.0.1:$((SLT_IN + i))?mode=listener&latency=$LATENCY" \
				"srt://127.0.0.1:$((SLT_OUT + i))?mode=listener&latency=$LATENCY" \
				>"$dir/slt-$i.log" 2>&1 &
		done
		wait
	) &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	# Listening before the publisher dials: poll for the sockets.
	for ((i = 0; i < 50; i++)); do
		[ "$(pgrep -c -P "$SERVER_PID" srt-live-transm || true)" -ge "$n" ] && break
		sleep 0.1
	done
	sleep 0.5
}

start_publisher() { # start_publisher LOGFILE srt|pubs|rtmp|slt N
	local logf=$1 kind=$2 n=$3 outs= i
	case $kind in
	pubs)
		for ((i = 0; i < n; i++)); do
			outs+="${outs:+|}[f=mpegts:onfail=ignore]srt://127.0.0.1:$SRT_PORT?pkt_size=1316&latency=$LAT_US&streamid=publish:live/b$i"
		done
		start_ffmpeg_loop "$logf" "$TSCLIP" -map 0 -f tee "$outs"
		;;
	srt)
		start_ffmpeg_loop "$logf" "$TSCLIP" \
			-f mpegts "srt://127.0.0.1:$SRT_PORT?pkt_size=1316&latency=$LAT_US&streamid=publish:live/b"
		;;
	rtmp)
		start_ffmpeg_loop "$logf" "$CLIP" -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/b"
		;;
	slt)
		if [ "$n" = 1 ]; then
			start_ffmpeg_loop "$logf" "$TSCLIP" -f mpegts "srt://127.0.0.1:$SLT_IN?pkt_size=1316&latency=$LAT_US"
		else
			for ((i = 0; i < n; i++)); do
				outs+="${outs:+|}[f=mpegts:onfail=ignore]srt://127.0.0.1:$((SLT_IN + i))?pkt_size=1316&latency=$LAT_US"
			done
			start_ffmpeg_loop "$logf" "$TSCLIP" -map 0 -f tee "$outs"
		fi
		;;
	esac
}

# tree_rss PID: VmRSS in KiB of PID and its descendants, summed.
tree_rss() {
	local sum=0 kid
	sum=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
	for kid in $(pgrep -P "$1" || true); do
		sum=$((sum + $(tree_rss "$kid")))
	done
	echo "${sum:-0}"
}

# run_case LABEL KIND N: one fresh server + publisher + readers.
run_case() {
	local label=$1 kind=$2 n=$3 dir=$OUT/$1-$2-$3-r$REP url extra=() reader_pid idle=$IDLE base_rss pubs=1
	LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
	log "run: $label, $kind in, $n SRT readers (window ${DURATION}s, rep $REP, load average $LOAD)"
	mkdir -p "$dir"
	case $label in
	relaymesh) start_relaymesh "$dir" "" ;;
	relaymesh-gmp1) start_relaymesh "$dir" 1 ;;
	relaymesh-base) start_relaymesh "$dir" "" "$RELAYMESH_BASE" ;;
	slt) start_slt "$dir" "$n" ;;
	*) die "unknown server $label (want slt, relaymesh, relaymesh-gmp1 or relaymesh-base)" ;;
	esac
	if [ "$kind" = pubs ]; then
		idle=$INTAKE_IDLE
		pubs=$n
	fi
	# RSS before any publisher: relaymesh once its API answers (it is up)
	if [ "$label" != slt ]; then
		wait_port $((BASE_PORT + 3)) 20 || die "relaymesh did not start: $(tail -c 300 "$dir/stdout.log")"
	fi
	base_rss=$(tree_rss "$SERVER_PID")
	if [ "$label" = slt ]; then
		start_publisher "$dir/ffmpeg.log" slt "$n"
		url="srt://127.0.0.1:$SLT_OUT?latency=$LATENCY"
		extra=(-distinct-ports)
		sleep 2 # the relays accept the publisher(s); no probe: one caller per output
	else
		start_publisher "$dir/ffmpeg.log" "$kind" "$n"
		url="srt://127.0.0.1:$SRT_PORT?streamid=read:live/b&latency=$LATENCY"
		extra=(-probe)
		[ "$kind" = pubs ] && extra+=(-distinct-streams)
	fi
	# In the background so that a signal reaches our trap at once.
	"$OUT/srtreader" -url "$url" -n "$n" "${extra[@]}" -wait-live 20s \
		-idle "${idle}s" -warmup "${WARMUP}s" -duration "${DURATION}s" \
		-pid "$SERVER_PID" -label "$label" \
		>"$dir/reader.json" 2>"$dir/reader.log" &
	reader_pid=$!
	PIDS+=("$reader_pid")
	if wait "$reader_pid"; then
		jq -c --arg kind "$kind" --arg load "$LOAD" --argjson rep "$REP" \
			--argjson pubs "$pubs" --argjson base "$base_rss" \
			'. + {input: $kind, rep: $rep, loadavg: $load, publishers: $pubs, rss_base_kib: $base}' "$dir/reader.json" >>"$RESULTS"
	else
		log "reader failed for $label/$kind/$n: $(tail -c 300 "$dir/reader.log") $(head -c 300 "$dir/reader.json")"
	fi
	forget_pid "$reader_pid"
	stop_and_forget "$PUB_PID" "$SERVER_PID"
	tail -n 1 "$RESULTS" | jq -r --arg l "$label" --arg k "$kind" --argjson n "$n" \
		'select(.label == $l and .input == $k and .readers == $n) | "   ok=\(.ok) failed=\(.failed) dropped=\(.dropped) \(.mbit_per_s) Mbit/s, cpu \(.server.cpu_seconds_per_gbit) s/Gbit, srt drop \(.srt.pkt_drop), cc gaps \(.ts.cc_gaps)"' >&2 || true
}

# --- runs ------------------------------------------------------------------
# Case by case, every server in turn (the machine may be shared: servers
# measured next to each other see the same load), REPS times.
LOAD=
for ((REP = 1; REP <= REPS; REP++)); do
	for n in $(printf '%s\n' $READERS $SLT_READERS | sort -n -u); do
		for server in $SERVERS; do
			if [ "$server" = slt ]; then
				case " $SLT_READERS " in *" $n "*) run_case slt srt "$n" ;; esac
			else
				case " $READERS " in *" $n "*) run_case "$server" srt "$n" ;; esac
			fi
		done
	done
	for n in $PUBLISHERS; do
		for server in $SERVERS; do
			run_case "$server" pubs "$n"
		done
	done
	for n in $RTMP_READERS; do
		for server in $SERVERS; do
			[ "$server" = slt ] || run_case "$server" rtmp "$n"
		done
	done
done
cleanup

# --- summary -----------------------------------------------------------------
{
	echo "# SRT benchmark $(date -u +%FT%TZ), $(nproc) cores, window ${DURATION}s, warmup ${WARMUP}s, latency ${LATENCY} ms"
	echo
	echo "$(srt-live-transmit -version 2>&1 | grep -m1 'SRT Library version' || true); $("$RELAYMESH_BIN" version 2>/dev/null | head -n 1 || true)${RELAYMESH_BASE:+; relaymesh-base: $("$RELAYMESH_BASE" version 2>/dev/null | head -n 1 || true)}; UDP: $RMEM_NOTE"
	echo
	echo "slt = srt-live-transmit, one process per reader (it relays one input to one output; its listener output serves one caller), each fed its own copy by one ffmpeg; CPU summed over those processes."
	echo
	echo "| rep | load average | server | input | readers | processes | ok/failed/no media/dropped | delivered Mbit/s | per reader min/median/max | server CPU % | CPU s per Gbit | kernel share | RSS KiB per reader | SRT pkts recv | loss | retrans | drop | belated | TS CC gaps | idle CPU % | reader CPU % |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	jq -r '"| \(.rep) | \(.loadavg) | \(.label) | \(.input) | \(.readers) | \(.server.processes) | \(.ok)/\(.failed)/\(.no_media)/\(.dropped) | \(.mbit_per_s) | \(.reader_mbit_min)/\(.reader_mbit_median)/\(.reader_mbit_max) | \(.server.cpu_percent) | \(.server.cpu_seconds_per_gbit) | \(if .server.cpu_seconds > 0 then (100 * .server.sys_seconds / .server.cpu_seconds | round | tostring) + "%" else "n/a" end) | \(.server.rss_kib_per_reader) | \(.srt.pkt_recv) | \(.srt.pkt_loss) | \(.srt.pkt_retrans) | \(.srt.pkt_drop) | \(.srt.pkt_belated) | \(.ts.cc_gaps) | \(.server.idle_cpu_percent) | \(.reader_cpu_percent) |"' "$RESULTS"
	echo
	echo "Ratios relaymesh / srt-live-transmit, CPU seconds per delivered Gbit (lower is better for relaymesh)."
	echo "\"measured\": slt ran N relays in this run; \"estimate\": N x slt's single relay, i.e. its CPU per Gbit at its smallest measured N (slt cannot fan out)."
	echo "RTMP in: relaymesh remuxes FLV -> TS and relays; slt's figure is its plain SRT -> SRT relay (it cannot take RTMP)."
	echo
	echo "| server | input | readers | relaymesh CPU s/Gbit | slt CPU s/Gbit | basis | ratio | relaymesh server CPU % | slt server CPU % (N relays) |"
	echo "|---|---|---|---|---|---|---|---|---|"
	jq -rs '
		(map(select(.label == "slt")) | map({key: "\(.rep)-\(.input)-\(.readers)", value: .}) | from_entries) as $slt
		| (map(select(.label == "slt" and .input == "srt")) | min_by(.readers)) as $one
		| def r2: (. * 100 | round / 100 | tostring);
		  def ratio(a; b): if (b // 0) > 0 then (a / b | r2) else "n/a" end;
		.[] | select(.label != "slt") | . as $r
		| (if $r.input != "rtmp" and $slt["\($r.rep)-\($r.input)-\($r.readers)"] != null then {s: $slt["\($r.rep)-\($r.input)-\($r.readers)"], basis: "measured, rep \($r.rep)"}
		   elif $one != null then {s: $one, basis: (if $r.input == "rtmp" then "slt SRT->SRT, \($one.readers) relay(s)" else "estimate: \($r.readers) x 1 relay (slt N=\($one.readers))" end)}
		   else null end) as $p
		| select($p != null)
		| (if $p.s.readers == $r.readers then ($p.s.server.cpu_percent | tostring)
		   else ("~" + ($p.s.server.cpu_percent / $p.s.readers * $r.readers | r2) + " (est.)") end) as $pcpu
		| "| \($r.label) | \($r.input) | \($r.readers) | \($r.server.cpu_seconds_per_gbit) | \($p.s.server.cpu_seconds_per_gbit) | \($p.basis) | \(ratio($r.server.cpu_seconds_per_gbit; $p.s.server.cpu_seconds_per_gbit)) | \($r.server.cpu_percent) | \($pcpu) |"' "$RESULTS"
	if jq -e -s 'any(.label == "relaymesh-base")' "$RESULTS" >/dev/null; then
		echo
		echo "relaymesh / relaymesh-base (RELAYMESH_BASE), CPU seconds per delivered Gbit, same rep and case (lower is better for relaymesh)."
		echo
		echo "| rep | input | readers | relaymesh CPU s/Gbit | relaymesh-base CPU s/Gbit | ratio |"
		echo "|---|---|---|---|---|---|"
		jq -rs '
			(map(select(.label == "relaymesh-base")) | map({key: "\(.rep)-\(.input)-\(.readers)", value: .}) | from_entries) as $base
			| .[] | select(.label == "relaymesh") | . as $r
			| $base["\($r.rep)-\($r.input)-\($r.readers)"] as $b
			| select($b != null)
			| "| \($r.rep) | \($r.input) | \($r.readers) | \($r.server.cpu_seconds_per_gbit) | \($b.server.cpu_seconds_per_gbit) | \(if $b.server.cpu_seconds_per_gbit > 0 then ($r.server.cpu_seconds_per_gbit / $b.server.cpu_seconds_per_gbit * 100 | round / 100 | tostring) else "n/a" end) |"' "$RESULTS"
	fi
	if jq -e -s 'any(.input == "pubs")' "$RESULTS" >/dev/null; then
		echo
		echo "Intake: N publishers, one stream each (input pubs). Publishers only (INTAKE_IDLE=${INTAKE_IDLE}s before the readers connect): server CPU and RSS; ingested Gbit = N x the mean per-reader rate of the window that follows. RSS per publisher = (RSS with the publishers - RSS before the first publisher) / N. slt: N relays whose outputs have no caller yet. Then one reader per stream: CPU per relayed Gbit."
		echo
		echo "| rep | load average | server | publishers | RSS before KiB | RSS with publishers KiB | RSS per publisher KiB | intake CPU % | intake CPU s per ingested Gbit | with 1 reader each: CPU s per Gbit | ok/failed/no media/dropped | SRT drop | TS CC gaps |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
		jq -r 'select(.input == "pubs")
			| def r2: (. * 100 | round / 100 | tostring);
			  (.publishers * .mbit_per_s_per_reader / 1000) as $gbps
			| "| \(.rep) | \(.loadavg) | \(.label) | \(.publishers) | \(.rss_base_kib) | \(.server.rss0_kib) | \((.server.rss0_kib - .rss_base_kib) / .publishers | round) | \(.server.idle_cpu_percent) | \(if $gbps > 0 then (.server.idle_cpu_percent / 100 / $gbps | r2) else "n/a" end) | \(.server.cpu_seconds_per_gbit) | \(.ok)/\(.failed)/\(.no_media)/\(.dropped) | \(.srt.pkt_drop) | \(.ts.cc_gaps) |"' "$RESULTS"
	fi
} | tee "$OUT/summary.md"
log "results: $OUT"

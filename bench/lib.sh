# Shared by bench/fanout.sh and bench/srt.sh (sourced, not run): logging,
# the processes a benchmark starts (killed by PID), building the binaries,
# the test clip, starting relaymesh and a looping ffmpeg publisher.
# The caller sets CACHE and OUT, then calls bench_setup.

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "$(basename "$0" .sh): $*"
	exit 1
}

# need_tools TOOL...: die unless each is on PATH.
need_tools() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool is not installed"
	done
}

# bench_setup: from the repository root (ROOT), create CACHE and OUT and an
# empty RESULTS=$OUT/results.jsonl; on exit the caller's cleanup runs.
bench_setup() {
	cd "$(dirname "$0")/.."
	ROOT=$PWD
	mkdir -p "$CACHE" "$OUT"
	RESULTS=$OUT/results.jsonl
	: >"$RESULTS"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

# --- processes we start, killed by PID on exit -------------------------
PIDS=()

# stop_all: stop every PID in PIDS.
stop_all() {
	local pid
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	PIDS=()
}

# stop_pid PID: TERM it and its children (nginx workers, relay processes),
# wait up to 5 s, then KILL.
stop_pid() {
	local pid=$1 kids i
	kill -0 "$pid" 2>/dev/null || return 0
	kids=$(pgrep -P "$pid" || true)
	kill -TERM "$pid" $kids 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" $kids 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# forget_pid PID: drop PID from PIDS (it has ended or was stopped).
forget_pid() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# stop_and_forget PID...: stop_pid and forget_pid each.
stop_and_forget() {
	local p
	for p in "$@"; do
		stop_pid "$p"
		forget_pid "$p"
	done
}

# wait_port PORT [SECONDS]: poll until something accepts on 127.0.0.1:PORT
# (default 10 s); fails after that.
wait_port() {
	local i
	for ((i = 0; i < ${2:-10} * 10; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# --- build -------------------------------------------------------------
# build_binaries READER: builds bench/READER into $OUT/READER and, unless
# RELAYMESH_BIN is set, relaymesh into bin/relaymesh (sets RELAYMESH_BIN).
build_binaries() {
	log "building the reader"
	go build -o "$OUT/$1" "./bench/$1"
	if [ -z "${RELAYMESH_BIN:-}" ]; then
		[ -d cmd/relaymesh ] || die "cmd/relaymesh does not exist; set RELAYMESH_BIN"
		log "building relaymesh"
		go build -o bin/relaymesh ./cmd/relaymesh
		RELAYMESH_BIN=$ROOT/bin/relaymesh
	fi
	[ -x "$RELAYMESH_BIN" ] || die "RELAYMESH_BIN=$RELAYMESH_BIN is not executable"
}

# --- the test clip: encoded once, then published with -c copy ----------
# Encoding live would cost the publisher a core; copying a file keeps the
# two cores for the servers and the readers. Both benchmarks share it.
CLIP=$CACHE/clip-720p30-3M-gop2s-v1.flv

# encode_clip FILE SIZE VIDEO AUDIO [X264...]: encode a 30 s 30 fps CBR
# H.264 (VIDEO, e.g. 900k; 2 s GOP) + AAC (AUDIO) FLV clip of noisy
# testsrc2 at SIZE (e.g. 640x360) to FILE unless it is there; X264 are
# more encoder options (e.g. -tune zerolatency).
encode_clip() {
	local file=$1 size=$2 v=$3 a=$4
	shift 4
	[ -s "$file" ] && return 0
	log "encoding the 30 s $size $v clip (once) to $file"
	ffmpeg -hide_banner -loglevel error -y \
		-f lavfi -i testsrc2=size="$size":rate=30 \
		-f lavfi -i sine=frequency=1000:sample_rate=48000 -t 30 \
		-vf noise=alls=12:allf=t \
		-c:v libx264 -preset veryfast "$@" \
		-b:v "$v" -maxrate "$v" -minrate "$v" -bufsize "$v" \
		-x264-params nal-hrd=cbr:filler=1 \
		-g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
		-c:a aac -b:a "$a" -f flv "$file.tmp"
	mv "$file.tmp" "$file"
}

# ensure_clip: encode the 30 s 720p H.264 + AAC clip to CLIP unless it is there.
ensure_clip() { encode_clip "$CLIP" 1280x720 2872k 128k -tune zerolatency; }

# --- servers and publisher -----------------------------------------------
SERVER_PID=
PUB_PID=

# start_relaymesh_conf DIR GOMAXPROCS|"": writes DIR/relaymesh.toml (RTMP on
# RTMP_PORT, HTTP on BASE_PORT+2, API on BASE_PORT+3, then the TOML read
# from stdin: the [srt] section and any more; WebRTC's UDP on BASE_PORT+5
# unless it has a [webrtc]) and starts relaymesh on it in the background;
# sets SERVER_PID.
start_relaymesh_conf() {
	local dir=$1 extra
	mkdir -p "$dir/data"
	extra=$(cat)
	{
		cat <<EOF
version = 1
[node]
name = "bench"
data_dir = "$dir/data"
log_level = "${LOG_LEVEL:-warn}"
[rtmp]
listen = "127.0.0.1:$RTMP_PORT"
[http]
listen = "127.0.0.1:$((BASE_PORT + 2))"
[api]
listen = "127.0.0.1:$((BASE_PORT + 3))"
EOF
		case $extra in *'[webrtc]'*) ;; *) printf '[webrtc]\nudp_listen = "127.0.0.1:%d"\n' $((BASE_PORT + 5)) ;; esac
		printf '%s\n' "$extra"
	} >"$dir/relaymesh.toml"
	if [ -n "$2" ]; then
		GOMAXPROCS=$2 "$RELAYMESH_BIN" run -c "$dir/relaymesh.toml" >"$dir/stdout.log" 2>&1 &
	else
		"$RELAYMESH_BIN" run -c "$dir/relaymesh.toml" >"$dir/stdout.log" 2>&1 &
	fi
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
}

# start_ffmpeg_loop LOGFILE INPUT OUTPUT_ARGS...: publish INPUT in a loop
# at its own rate (-re, -c copy) in the background; sets PUB_PID.
start_ffmpeg_loop() {
	local logf=$1 input=$2
	shift 2
	ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$input" -c copy "$@" >"$logf" 2>&1 &
	PUB_PID=$!
	PIDS+=("$PUB_PID")
}

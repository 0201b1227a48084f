#!/bin/sh
# Cost of the AAC -> Opus transcode a WHEP reader of an AAC stream gets:
# the exact ffmpeg child media/webrtc/opus.go runs, fed real-time ADTS
# (48 kHz stereo AAC, 128k, like a typical RTMP publisher), beside the
# same ffmpeg only copying the audio (the cost of the process itself).
# CPU seconds (user+sys) and peak RSS per run of SECONDS.
# usage: nice -n 10 bench/webrtc-audio.sh [SECONDS] [REPS]
set -eu
secs=${1:-20}
reps=${2:-2}
src() {
	ffmpeg -hide_banner -loglevel error -re -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs" \
		-ac 2 -c:a aac -b:a 128k -f adts pipe:1
}
opus="-c:a libopus -b:a 64k -ar 48000 -ac 2 -application lowdelay -frame_duration 20 -f ogg -page_duration 20000 -flush_packets 1"
copy="-c:a copy -f adts"
printf 'case\trep\tcpu_s\tcpu_%%core\tmax_rss_kB\n'
for rep in $(seq 1 "$reps"); do
	for case in opus copy; do
		eval "args=\$$case"
		out=$(src | /usr/bin/time -f '%U %S %M' ffmpeg -hide_banner -loglevel error -probesize 32 -analyzeduration 0 \
			-fflags nobuffer -f aac -i pipe:0 -vn $args pipe:1 2>&1 >/dev/null | tail -1)
		set -- $out
		cpu=$(echo "$1 + $2" | bc -l)
		pct=$(echo "100 * $cpu / $secs" | bc -l)
		printf '%s\t%s\t%.2f\t%.2f\t%s\n' "$case" "$rep" "$cpu" "$pct" "$3"
	done
done

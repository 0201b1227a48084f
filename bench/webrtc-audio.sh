#!/bin/sh
# Cost of the audio transcodes of media/webrtc, each the exact ffmpeg child
# it runs: "opus" = AAC -> Opus per WHEP reader (opus.go), fed real-time
# ADTS (48 kHz stereo AAC, 128k, like a typical RTMP publisher); "aac" =
# Opus -> AAC per WHIP publisher (whipaudio.go), fed real-time Ogg Opus
# (64k, 20 ms); beside the same ffmpeg only copying ADTS (the cost of the
# process itself).
# CPU seconds (user+sys) and peak RSS per run of SECONDS.
# usage: nice -n 10 bench/webrtc-audio.sh [SECONDS] [REPS]
set -eu
secs=${1:-20}
reps=${2:-2}
src_aac() {
	ffmpeg -hide_banner -loglevel error -re -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs" \
		-ac 2 -c:a aac -b:a 128k -f adts pipe:1
}
src_ogg() {
	ffmpeg -hide_banner -loglevel error -re -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs" \
		-ac 2 -c:a libopus -b:a 64k -frame_duration 20 -page_duration 20000 -f ogg pipe:1
}
opus="-c:a libopus -b:a 64k -ar 48000 -ac 2 -application lowdelay -frame_duration 20 -f ogg -page_duration 20000 -flush_packets 1"
copy="-c:a copy -f adts"
aac="-c:a aac -b:a 128k -ar 48000 -ac 2 -f adts -flush_packets 1"
printf 'case\trep\tcpu_s\tcpu_%%core\tmax_rss_kB\n'
for rep in $(seq 1 "$reps"); do
	for case in opus aac copy; do
		eval "args=\$$case"
		if [ "$case" = aac ]; then
			out=$(src_ogg | /usr/bin/time -f '%U %S %M' ffmpeg -hide_banner -loglevel error -probesize 4096 -analyzeduration 0 \
				-fflags nobuffer -f ogg -i pipe:0 -vn $args pipe:1 2>&1 >/dev/null | tail -1)
		else
			out=$(src_aac | /usr/bin/time -f '%U %S %M' ffmpeg -hide_banner -loglevel error -probesize 32 -analyzeduration 0 \
				-fflags nobuffer -f aac -i pipe:0 -vn $args pipe:1 2>&1 >/dev/null | tail -1)
		fi
		set -- $out
		cpu=$(echo "$1 + $2" | bc -l)
		pct=$(echo "100 * $cpu / $secs" | bc -l)
		printf '%s\t%s\t%.2f\t%.2f\t%s\n' "$case" "$rep" "$cpu" "$pct" "$3"
	done
done

#!/usr/bin/env bash
# The Debian packages `make test` needs (real peers, namespaces, the .deb
# checks). As root, installs the missing ones; otherwise prints the one
# command to run and fails. Used by `make test` and so by .ci/run.
set -euo pipefail
pkgs=(
  ffmpeg              # publishers, players, ffprobe (built with libsrt)
  srt-tools           # srt-live-transmit, the libsrt peer
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good  # gst-launch-1.0: rtmp2src/rtmp2sink,
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav   # x264enc, x265enc, mpegtsmux, avdec_*
  nginx libnginx-mod-rtmp  # the peer of the RTMP tests and of make bench
  iproute2 iptables   # network namespaces, veth, bridges; iptables-legacy NFQUEUE for WAN emulation
  lintian debootstrap dpkg-dev  # .deb checks
  systemd             # systemd-analyze verify for the unit
  systemd-container   # systemd-nspawn: the .deb test boots a container with systemd as PID 1
  chromium chromium-driver  # headless browser: the player page test (agent/browser_test.go)
  ca-certificates git make procps
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "make test needs these Debian packages; install them with:" >&2
  echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

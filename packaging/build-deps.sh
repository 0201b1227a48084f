#!/bin/sh
# packaging/build-deps.sh: check the C side of the build (`make build`
# and `make run` call it). relaymesh's SRT engine is libsrt through cgo,
# so building needs a C compiler, pkg-config and libsrt's headers
# (Debian 12: gcc libc6-dev pkg-config libsrt-gnutls-dev). As root on
# Debian they are installed; otherwise it names the one command to run.
set -eu
pkgs="gcc libc6-dev pkg-config libsrt-gnutls-dev"
have() {
	command -v "${CC:-gcc}" >/dev/null 2>&1 &&
		command -v pkg-config >/dev/null 2>&1 &&
		pkg-config --exists srt
}
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "build-deps: installing $pkgs (libsrt is relaymesh's SRT engine)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
	have && exit 0
fi
echo "relaymesh needs libsrt and a C compiler to build (its SRT engine is libsrt through cgo); run:" >&2
echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $pkgs" >&2
exit 1

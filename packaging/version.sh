#!/bin/sh
# Prints relaymesh's upstream version in a form Debian accepts (starts with a
# digit; only [A-Za-z0-9.+~]), from `git describe --tags --dirty`:
#   v1.2.0                  -> 1.2.0
#   v1.2.0-5-gabc1234-dirty -> 1.2.0+git5.gabc1234.dirty
#   no tag yet, at abc1234  -> 0.1.0~git42.gabc1234  (42 = commits so far, so
#                              snapshots sort in order; ~ sorts before 0.1.0,
#                              so a real 0.1.0 upgrades them)
set -eu
cd "$(dirname "$0")/.."
clean() { printf '%s\n' "$1" | sed 's/[^A-Za-z0-9.+~]/./g'; }
if d=$(git describe --tags --dirty 2>/dev/null); then
	dirty=
	case "$d" in *-dirty) dirty=1; d=${d%-dirty} ;; esac
	d=${d#v}
	case "$d" in
	[0-9]*) ;;
	*) d=0.0.0+$d ;; # a tag that is not a version
	esac
	case "$d" in
	*-*-g*) v=$(printf '%s\n' "$d" | sed -E 's/^(.*)-([0-9]+)-g([0-9a-f]+)$/\1+git\2.g\3/') ;;
	*) v=$d ;;
	esac
	if [ -n "$dirty" ]; then
		case "$v" in *+*) v=$v.dirty ;; *) v=$v+dirty ;; esac
	fi
	clean "$v"
elif sha=$(git rev-parse --short HEAD 2>/dev/null); then
	n=$(git rev-list --count HEAD)
	v=0.1.0~git$n.g$sha
	git diff --quiet HEAD 2>/dev/null || v=$v.dirty
	clean "$v"
else
	echo 0.1.0~unknown
fi

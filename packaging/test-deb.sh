#!/bin/bash
# packaging/test-deb.sh: build the relaymesh .deb and check it the way an
# operator meets it:
#   1. make deb (packaging/deb.mk)
#   2. lintian: no error, no warning that is not overridden with a reason
#   3. dpkg-deb -c / -I: expected paths, modes, owners, conffiles
#   4. systemd-analyze verify of the unit, and its security exposure score
#   5. as root: install into a fresh Debian 12 (bookworm) minbase chroot;
#      files, user, `relaymesh check`, upgrade in place, remove, purge
#   6. as root: boot a Debian 12 root with systemd as PID 1
#      (systemd-nspawn -b), install there and check the unit's behaviour:
#      postinst's sysctl line, reload refused/applied with the agent's
#      verdict, cleanup from the tc record after kill -9 with an unreadable
#      drop-in, the start limit ending in `failed`
#
# Prints PASS/FAIL/SKIP lines and "N passed, N failed"; exits 1 on failure.
# Environment:
#   RELAYMESH_CI_CACHE   cache dir for nfpm-independent state (pristine
#                        chroot); default /var/cache/relaymesh-ci as root,
#                        else $XDG_CACHE_HOME/relaymesh-ci
#   RELAYMESH_CI_MIRROR  Debian mirror; default: the one apt uses here
#   MAX_EXPOSURE         highest accepted systemd-analyze score (default 2.0)
#   DEB_BIN, DEB_CONFIGS passed on to `make deb` (see packaging/deb.mk)
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C.UTF-8

start=$(date +%s)
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
skip() { echo "SKIP: $*"; }
finish() {
	echo "deb test took $(($(date +%s) - start)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

MAKE="make --no-print-directory -f packaging/deb.mk"
TMP=$(mktemp -d /tmp/relaymesh-deb-test.XXXXXX)
ROOT= # the chroot work copy, once made
BROOT= # the booted container's root, once made
NSPAWN= # the systemd-nspawn process, once started
cleanup() {
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		kill "$NSPAWN"
		for _ in $(seq 30); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 1; done
		kill -9 "$NSPAWN" 2>/dev/null
	fi
	[ -n "$BROOT" ] && rm -rf --one-file-system "$BROOT"
	if [ -n "$ROOT" ]; then
		for m in "$ROOT/proc" "$ROOT/dev/pts"; do
			if mountpoint -q "$m" 2>/dev/null; then
				umount "$m" || umount -l "$m"
			fi
		done
		rm -rf --one-file-system "$ROOT"
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. build ---------------------------------------------------------------
if $MAKE deb >"$TMP/build.log" 2>&1; then
	# the newest: dist/ keeps the packages of earlier versions
	DEB=$(ls -t dist/relaymesh_*_amd64.deb 2>/dev/null | head -n 1)
	pass "make deb built $DEB"
else
	tail -n 30 "$TMP/build.log"
	fail "make deb"
	finish
fi
VERSION=$($MAKE -s deb-version)
UPSTREAM=${VERSION%-*}
case "$DEB" in
"dist/relaymesh_${VERSION}_amd64.deb") pass "file name carries version $VERSION" ;;
*) fail "file name $DEB does not carry version $VERSION" ;;
esac

# --- 2. lintian ---------------------------------------------------------------
if lintian --allow-root --fail-on error,warning --pedantic -E -I "$DEB" >"$TMP/lintian.log" 2>&1; then
	pass "lintian: no errors or warnings ($(grep -c . "$TMP/lintian.log") info/pedantic/experimental lines)"
	sed 's/^/  lintian: /' "$TMP/lintian.log"
else
	sed 's/^/  lintian: /' "$TMP/lintian.log"
	fail "lintian"
fi

# --- 3. contents ------------------------------------------------------------
dpkg-deb -c "$DEB" >"$TMP/contents" || fail "dpkg-deb -c"
# mode owner path, for every regular file the package must ship.
expected_files="\
-rwxr-xr-x root/root ./usr/bin/relaymesh
-rw-r--r-- root/root ./lib/systemd/system/relaymesh.service
-rw-r----- root/root ./etc/relaymesh/relaymesh.toml
-rw-r--r-- root/root ./etc/default/relaymesh
-rw-r--r-- root/root ./usr/lib/sysctl.d/60-relaymesh.conf
-rw-r--r-- root/root ./usr/share/man/man8/relaymesh.8.gz
-rw-r--r-- root/root ./usr/share/doc/relaymesh/copyright
-rw-r--r-- root/root ./usr/share/doc/relaymesh/changelog.Debian.gz
-rw-r--r-- root/root ./usr/share/doc/relaymesh/examples/standalone.toml
-rw-r--r-- root/root ./usr/share/doc/relaymesh/examples/edge.toml
-rw-r--r-- root/root ./usr/share/doc/relaymesh/examples/center.toml
-rw-r--r-- root/root ./usr/share/lintian/overrides/relaymesh"
awk '$1 !~ /^d/ {print $1, $2, $6}' "$TMP/contents" | sort >"$TMP/got"
printf '%s\n' "$expected_files" | sort >"$TMP/want"
if diff -u "$TMP/want" "$TMP/got" >"$TMP/diff"; then
	pass "dpkg-deb -c: the $(wc -l <"$TMP/want") expected files with their modes and owners, nothing else"
else
	sed 's/^/  /' "$TMP/diff"
	fail "dpkg-deb -c: files, modes or owners differ (- expected, + in the package)"
fi
if awk '$1 ~ /^d/ && ($1 != "drwxr-xr-x" || $2 != "root/root") {print; bad=1} END {exit bad}' "$TMP/contents"; then
	pass "dpkg-deb -c: every directory is 0755 root/root"
else
	fail "dpkg-deb -c: directories above are not 0755 root/root"
fi
mkdir -p "$TMP/ctrl" "$TMP/x"
dpkg-deb -e "$DEB" "$TMP/ctrl"
dpkg-deb -x "$DEB" "$TMP/x"
if [ "$(sort "$TMP/ctrl/conffiles")" = "$(printf '/etc/default/relaymesh\n/etc/relaymesh/relaymesh.toml\n')" ]; then
	pass "conffiles: /etc/default/relaymesh and /etc/relaymesh/relaymesh.toml"
else
	fail "conffiles are: $(tr '\n' ' ' <"$TMP/ctrl/conffiles")"
fi
for s in postinst prerm postrm; do
	if [ -x "$TMP/ctrl/$s" ] && sh -n "$TMP/ctrl/$s"; then
		pass "$s is executable and parses"
	else
		fail "$s missing, not executable or not valid sh"
	fi
done
if [ "$(dpkg-deb -f "$DEB" Depends)" = "adduser, libc6 (>= 2.34), libsrt1.5-gnutls" ]; then
	pass "Depends: adduser, libc6 (>= 2.34), libsrt1.5-gnutls (the cgo binary and the SRT engine)"
else
	fail "Depends is '$(dpkg-deb -f "$DEB" Depends)', expected 'adduser, libc6 (>= 2.34), libsrt1.5-gnutls'"
fi
top=$(zcat "$TMP/x/usr/share/doc/relaymesh/changelog.Debian.gz" | head -n 1)
if [ "$top" = "relaymesh ($VERSION) unstable; urgency=medium" ]; then
	pass "changelog.Debian.gz top entry is $VERSION"
else
	fail "changelog.Debian.gz top line is '$top', package version $VERSION"
fi
# The sysctl drop-in: every value at least 8 MiB.
sysctl_ok=1
for k in net.core.rmem_max net.core.wmem_max net.core.rmem_default; do
	v=$(awk -F' *= *' -v k="$k" '$1 == k {print $2}' "$TMP/x/usr/lib/sysctl.d/60-relaymesh.conf")
	if [ -z "$v" ] || [ "$v" -lt 8388608 ]; then
		fail "sysctl drop-in: $k = '${v}', want >= 8388608"
		sysctl_ok=0
	fi
done
[ "$sysctl_ok" = 1 ] && pass "sysctl drop-in raises rmem_max, wmem_max, rmem_default to >= 8 MiB"
# short_of_dropin CMD...: the first key the kernel (read with CMD FILE, e.g.
# `cat` or `in_boot cat`) holds below the drop-in's value, as key=have/want;
# empty when every key is in force. postinst checks every key, not only rmem_max.
short_of_dropin() {
	awk -F' *= *' '/^net\./ {print $1, $2}' "$TMP/x/usr/lib/sysctl.d/60-relaymesh.conf" |
		while read -r k want; do
			have=$("$@" "/proc/sys/$(echo "$k" | tr . /)")
			if [ "$have" -lt "$want" ]; then echo "$k=$have/$want"; break; fi
		done
}
# postinst_sysctl_line WHERE LOG LINE SHORT: postinst's log has LINE once
# when a kernel value is short of the drop-in's (SHORT non-empty), else never
postinst_sysctl_line() {
	n=$(grep -c -- "$3" "$2")
	if [ -n "$4" ] && [ "$n" = 1 ]; then
		pass "postinst $1 says in one line that the sysctls are not in force ($4)"
	elif [ -z "$4" ] && [ "$n" = 0 ]; then
		# applied now or already set so: either way no message
		pass "postinst $1: the sysctls are in force and it says nothing"
	else
		sed 's/^/  /' "$2"
		fail "postinst $1: short of the drop-in: '${4:-none}', $n lines '$3'"
	fi
}

# --- 4. the unit --------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
	# verify looks for the ExecStart binary and the man page under --root,
	# and for the targets the unit names.
	mkdir -p "$TMP/x/lib/systemd/system"
	for t in /lib/systemd/system/*.target; do
		[ -e "$TMP/x/lib/systemd/system/${t##*/}" ] || cp -P "$t" "$TMP/x/lib/systemd/system/"
	done
	if (cd "$TMP" && MANPATH="$TMP/x/usr/share/man" systemd-analyze verify --root="$TMP/x" relaymesh.service) >"$TMP/verify.log" 2>&1 &&
		! [ -s "$TMP/verify.log" ]; then
		pass "systemd-analyze verify relaymesh.service: clean"
	else
		sed 's/^/  /' "$TMP/verify.log"
		fail "systemd-analyze verify relaymesh.service"
	fi
	(cd "$TMP" && systemd-analyze security --offline=yes --root="$TMP/x" relaymesh.service) >"$TMP/security.log" 2>&1
	score=$(sed -n 's/.*Overall exposure level for relaymesh.service: \([0-9.]*\).*/\1/p' "$TMP/security.log")
	if [ -n "$score" ] && awk -v s="$score" -v m="${MAX_EXPOSURE:-2.0}" 'BEGIN {exit !(s <= m)}'; then
		pass "systemd-analyze security: exposure $score (max ${MAX_EXPOSURE:-2.0})"
	else
		grep '✗' "$TMP/security.log" | sed 's/^/  /'
		fail "systemd-analyze security: exposure '${score}' above ${MAX_EXPOSURE:-2.0}"
	fi
else
	fail "systemd-analyze not found (apt-get install systemd)"
fi

# --- 5. install into a Debian 12 chroot -----------------------------------------
if [ "$(id -u)" != 0 ]; then
	skip "chroot install test needs root (CI runs it as root)"
	finish
fi
if ! command -v debootstrap >/dev/null; then
	fail "debootstrap not found (apt-get install debootstrap)"
	finish
fi

mirror=${RELAYMESH_CI_MIRROR:-}
if [ -z "$mirror" ]; then
	# deb822 .sources first, then one-line sources.list; skip security.
	mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' |
		grep -v -e security -e '^cdrom' | grep '/debian/\?$' | head -n 1)
fi
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' |
		grep -v security | grep '/debian/\?$' | head -n 1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

CACHE=${RELAYMESH_CI_CACHE:-/var/cache/relaymesh-ci}
# cached_root DIR INCLUDE WHAT: make DIR a Debian 12 minbase root with the
# packages INCLUDE (debootstrap, once: a stamp says what DIR holds).
cached_root() {
	stamp="bookworm minbase $2 v1"
	[ "$(cat "$1/.relaymesh-ci" 2>/dev/null)" = "$stamp" ] && return 0
	echo "making $3 in $1 from $mirror (once)"
	t0=$(date +%s)
	rm -rf --one-file-system "$1" "$1.new"
	if debootstrap --variant=minbase --include="$2" bookworm "$1.new" "$mirror" >"$TMP/debootstrap.log" 2>&1; then
		rm -rf "$1.new/var/cache/apt/archives/"*.deb
		echo "$stamp" >"$1.new/.relaymesh-ci"
		mv "$1.new" "$1"
		pass "debootstrap $3 ($(($(date +%s) - t0)) s)"
	else
		tail -n 20 "$TMP/debootstrap.log"
		fail "debootstrap --variant=minbase --include=$2 bookworm from $mirror"
		finish
	fi
}
# remove_stale PREFIX: delete the work copies PREFIX.PID of runs that were
# killed (their PID is gone), unmounting what they mounted first.
remove_stale() {
	for w in "$1".*; do
		[ -d "$w" ] || continue
		kill -0 "${w##*.}" 2>/dev/null && continue
		for m in "$w/proc" "$w/dev/pts"; do
			mountpoint -q "$m" 2>/dev/null && { umount "$m" || umount -l "$m"; }
		done
		rm -rf --one-file-system "$w"
	done
}
# On a real host init-system-helpers is always there (systemd needs it);
# having it here tests that postinst enables the unit. libsrt1.5-gnutls
# is the package's other Depends (dpkg -i does not fetch dependencies).
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9
cached_root "$CACHE/bookworm-minbase" adduser,init-system-helpers,libsrt1.5-gnutls "a pristine Debian 12 minbase root"
remove_stale "$CACHE/work"
ROOT=$CACHE/work.$$
cp -a "$CACHE/bookworm-minbase" "$ROOT"
flock -u 9
mount -t proc proc "$ROOT/proc"

in_root() { chroot "$ROOT" "$@"; }
host_rmem=$(cat /proc/sys/net/core/rmem_default)

cp "$DEB" "$ROOT/tmp/relaymesh.deb"
if in_root dpkg -i /tmp/relaymesh.deb >"$TMP/dpkg-i.log" 2>&1; then
	pass "dpkg -i in a fresh bookworm minbase root"
else
	sed 's/^/  /' "$TMP/dpkg-i.log"
	fail "dpkg -i in a fresh bookworm minbase root"
	finish
fi
if [ "$(cat /proc/sys/net/core/rmem_default)" = "$host_rmem" ]; then
	pass "postinst in a chroot left the host's sysctls alone"
else
	fail "postinst in a chroot changed the host's net.core.rmem_default"
fi
# ... and says so when the kernel's values are short of the drop-in's
postinst_sysctl_line "in a chroot" "$TMP/dpkg-i.log" '60-relaymesh.conf not applied now, systemd does not run here' \
	"$(short_of_dropin cat)"

# mode owner:group path, as installed
expect_stat() {
	got=$(in_root stat -c '%a %U:%G' "$3" 2>&1)
	if [ "$got" = "$1 $2" ]; then
		pass "installed $3 $1 $2"
	else
		fail "installed $3: '$got', want '$1 $2'"
	fi
}
expect_stat 755 root:root /usr/bin/relaymesh
expect_stat 644 root:root /lib/systemd/system/relaymesh.service
expect_stat 640 root:relaymesh /etc/relaymesh/relaymesh.toml
expect_stat 755 root:root /etc/relaymesh/conf.d
expect_stat 644 root:root /etc/default/relaymesh
expect_stat 644 root:root /usr/lib/sysctl.d/60-relaymesh.conf
expect_stat 644 root:root /usr/share/man/man8/relaymesh.8.gz
expect_stat 644 root:root /usr/share/doc/relaymesh/copyright
expect_stat 644 root:root /usr/share/doc/relaymesh/examples/edge.toml
expect_stat 644 root:root /usr/share/doc/relaymesh/examples/center.toml
expect_stat 750 relaymesh:relaymesh /var/lib/relaymesh

pw=$(in_root getent passwd relaymesh)
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
if [ -n "$pw" ] && [ "$uid" -lt 1000 ] && [ "$home" = /var/lib/relaymesh ] && [ "$shell" = /usr/sbin/nologin ] &&
	[ "$(in_root getent group relaymesh | cut -d: -f3)" = "$gid" ]; then
	pass "system user relaymesh (uid $uid, group relaymesh, home /var/lib/relaymesh, no login)"
else
	fail "system user relaymesh: '$pw'"
fi
if [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/relaymesh.service" ]; then
	pass "relaymesh.service enabled (multi-user.target.wants symlink)"
else
	fail "relaymesh.service not enabled by postinst"
fi

# `relaymesh check` as the service user: proves it can read the 0640 config.
run_check() {
	out=$(in_root setpriv --reuid=relaymesh --regid=relaymesh --clear-groups /usr/bin/relaymesh check -c "$1" 2>&1)
	rc=$?
	if [ $rc = 0 ] && printf '%s\n' "$out" | tail -n 1 | grep -q 'ok$'; then
		printf '%s\n' "$out" | grep -v 'ok$' | sed 's/^/  /'
		pass "relaymesh check -c $1 (as user relaymesh): ok"
	else
		printf '%s\n' "$out" | sed 's/^/  /'
		fail "relaymesh check -c $1 (as user relaymesh): exit $rc"
	fi
}
run_check /etc/relaymesh/relaymesh.toml
# The edge and center examples name secrets the operator creates, as their
# comments say: the cluster's URL-signing key and the API token.
if ! in_root setpriv --reuid=relaymesh --regid=relaymesh --clear-groups /usr/bin/relaymesh check \
	-c /usr/share/doc/relaymesh/examples/edge.toml >/dev/null 2>&1; then
	pass "relaymesh check refuses the edge example while its key file is missing"
else
	fail "relaymesh check accepts the edge example without /etc/relaymesh/auth.key"
fi
in_root sh -c 'umask 027
	head -c 32 /dev/urandom | base64 >/etc/relaymesh/auth.key
	head -c 24 /dev/urandom | base64 >/etc/relaymesh/api.token
	head -c 24 /dev/urandom | base64 >/etc/relaymesh/api-read.token
	head -c 32 /dev/urandom | base64 >/etc/relaymesh/gossip.key
	head -c 32 /dev/urandom | base64 >/etc/relaymesh/backbone.key
	chgrp relaymesh /etc/relaymesh/auth.key /etc/relaymesh/api.token /etc/relaymesh/api-read.token \
		/etc/relaymesh/gossip.key /etc/relaymesh/backbone.key'
for f in "$ROOT"/usr/share/doc/relaymesh/examples/*.toml; do
	run_check "${f#"$ROOT"}"
done
# As root, check judges for the unit's User=relaymesh: a drop-in (or key)
# only root can read is a problem that names the file and the user.
in_root sh -c 'umask 027; printf "[limits]\nmax_publishers = 10\n" >/etc/relaymesh/conf.d/50-local.toml'
out=$(in_root /usr/bin/relaymesh check -c /etc/relaymesh/relaymesh.toml 2>&1)
rc=$?
if [ $rc = 1 ] && printf '%s\n' "$out" | grep -q '/etc/relaymesh/conf.d/50-local.toml (0640 root:root) is not readable by user relaymesh'; then
	pass "relaymesh check as root: a drop-in user relaymesh cannot read is named"
else
	printf '%s\n' "$out" | sed 's/^/  /'
	fail "relaymesh check as root accepts a drop-in user relaymesh cannot read (exit $rc)"
fi
in_root chgrp relaymesh /etc/relaymesh/conf.d/50-local.toml
out=$(in_root /usr/bin/relaymesh check -c /etc/relaymesh/relaymesh.toml 2>&1)
rc=$?
if [ $rc = 0 ]; then
	pass "relaymesh check as root: ok once the drop-in is group relaymesh"
else
	printf '%s\n' "$out" | sed 's/^/  /'
	fail "relaymesh check as root with a readable drop-in: exit $rc"
fi
out=$(in_root /usr/bin/relaymesh version 2>&1)
rc=$?
if [ -n "${DEB_BIN:-}" ]; then
	# A binary packaged as it is carries whatever version it was built with.
	[ $rc = 0 ] && pass "relaymesh version runs: $out" || fail "relaymesh version: exit $rc: $out"
elif [ $rc = 0 ] && printf '%s\n' "$out" | grep -qF "$UPSTREAM"; then
	pass "relaymesh version says $UPSTREAM"
else
	fail "relaymesh version: exit $rc, says '$out', want it to contain $UPSTREAM"
fi

# Upgrade in place (same version again: postinst configure <old-version>):
# an operator's edit of the conffile and the statoverride both survive.
echo "# edited by the operator" >>"$ROOT/etc/relaymesh/relaymesh.toml"
echo '{"flows":[]}' >"$ROOT/var/lib/relaymesh/objects.json"
chroot "$ROOT" chown relaymesh:relaymesh /var/lib/relaymesh/objects.json
if in_root dpkg -i /tmp/relaymesh.deb >"$TMP/dpkg-up.log" 2>&1 &&
	grep -q '^# edited by the operator' "$ROOT/etc/relaymesh/relaymesh.toml"; then
	pass "reinstall over itself keeps the operator's edit of relaymesh.toml"
else
	sed 's/^/  /' "$TMP/dpkg-up.log"
	fail "reinstall over itself (upgrade path)"
fi
expect_stat 640 root:relaymesh /etc/relaymesh/relaymesh.toml

# Remove: program gone, config and data kept.
if in_root dpkg -r relaymesh >"$TMP/dpkg-r.log" 2>&1; then
	pass "dpkg -r relaymesh"
else
	sed 's/^/  /' "$TMP/dpkg-r.log"
	fail "dpkg -r relaymesh"
fi
[ ! -e "$ROOT/usr/bin/relaymesh" ] && pass "remove: /usr/bin/relaymesh gone" || fail "remove: /usr/bin/relaymesh still there"
[ -f "$ROOT/var/lib/relaymesh/objects.json" ] && pass "remove: /var/lib/relaymesh and its data kept" ||
	fail "remove: /var/lib/relaymesh/objects.json is gone"
[ -f "$ROOT/etc/relaymesh/relaymesh.toml" ] && pass "remove: conffile /etc/relaymesh/relaymesh.toml kept" ||
	fail "remove: conffile /etc/relaymesh/relaymesh.toml is gone"

# Purge: data, config, every documented secret, the drop-ins, statoverride
# and unit state gone; the account stays.
secrets="/etc/relaymesh/auth.key /etc/relaymesh/api.token /etc/relaymesh/api-read.token /etc/relaymesh/gossip.key /etc/relaymesh/backbone.key"
for p in $secrets /etc/relaymesh/conf.d/50-local.toml; do
	[ -f "$ROOT$p" ] || fail "before purge: $p is missing, so purge cannot be shown to remove it"
done

if in_root dpkg -P relaymesh >"$TMP/dpkg-p.log" 2>&1; then
	pass "dpkg -P relaymesh"
else
	sed 's/^/  /' "$TMP/dpkg-p.log"
	fail "dpkg -P relaymesh"
fi
left=
for p in /var/lib/relaymesh /etc/relaymesh /etc/default/relaymesh $secrets /etc/relaymesh/conf.d/50-local.toml \
	/etc/systemd/system/multi-user.target.wants/relaymesh.service \
	/var/lib/systemd/deb-systemd-helper-enabled/relaymesh.service.dsh-also; do
	[ -e "$ROOT$p" ] || [ -L "$ROOT$p" ] && left="$left $p"
done
[ -z "$left" ] && pass "purge: data dir, config, secrets (auth, api, api-read, gossip, backbone keys), drop-ins and unit state removed" || fail "purge left:$left"
if in_root dpkg-statoverride --list | grep -q relaymesh; then
	fail "purge: dpkg-statoverride entry left"
else
	pass "purge: dpkg-statoverride entry removed"
fi
if in_root dpkg-query -W -f='${db:Status-Status}' relaymesh 2>/dev/null | grep -qv not-installed; then
	fail "purge: dpkg still knows relaymesh"
else
	pass "purge: package fully gone from dpkg's database"
fi
if in_root find / -xdev -user relaymesh 2>/dev/null | grep -q .; then
	fail "purge: files owned by relaymesh left: $(in_root find / -xdev -user relaymesh | head -n 5 | tr '\n' ' ')"
else
	pass "purge: no file owned by user relaymesh is left (the account itself is kept, as Debian does)"
fi

# --- 6. under a real systemd (PID 1) in a booted container ---------------------
if ! command -v systemd-nspawn >/dev/null; then
	fail "systemd-nspawn not found (apt-get install systemd-container)"
	finish
fi
flock 9
cached_root "$CACHE/bookworm-systemd" adduser,init-system-helpers,libsrt1.5-gnutls,systemd,systemd-sysv,dbus,iproute2 "a bootable Debian 12 root (systemd)"
remove_stale "$CACHE/boot"
BROOT=$CACHE/boot.$$
cp -a "$CACHE/bookworm-systemd" "$BROOT"
flock -u 9
# /tmp is a tmpfs once booted
cp "$DEB" "$BROOT/var/tmp/relaymesh.deb"
systemd-nspawn -q -D "$BROOT" -b --register=no --keep-unit --network-veth -M "relaymesh-ci-$$" \
	--console=read-only >"$TMP/nspawn.log" 2>&1 &
NSPAWN=$!
LEADER=
in_boot() { nsenter -t "$LEADER" -m -u -i -n -p -- "$@"; }
booted=0
state=
deadline=$(($(date +%s) + 120))
while [ "$(date +%s)" -lt "$deadline" ]; do
	kill -0 "$NSPAWN" 2>/dev/null || break
	# the container's PID 1 is nspawn's child named systemd (looked up
	# each round: nspawn's first child can be a short-lived helper)
	LEADER=$(pgrep -P "$NSPAWN" -x systemd | head -n 1)
	if [ -n "$LEADER" ]; then
		state=$(in_boot systemctl is-system-running 2>/dev/null)
		case "$state" in
		running | degraded) booted=1; break ;;
		esac
	fi
	sleep 0.5
done
if [ "$booted" = 1 ]; then
	pass "booted the root with systemd as PID 1 (systemd-nspawn -b, private network)"
else
	tail -n 30 "$TMP/nspawn.log" | sed 's/^/  nspawn: /'
	fail "systemd-nspawn -b: the container did not reach running in 120 s (PID 1: '${LEADER}', is-system-running: '${state}')"
	finish
fi
# wait_for SECONDS WHAT CMD...: poll CMD every 0.5 s until it succeeds
wait_for() {
	n=$(($1 * 2))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		n=$((n - 1))
		sleep 0.5
	done
	return 1
}
journal_has() { in_boot journalctl -u relaymesh --no-pager -o cat | grep -qF -- "$1"; }

if in_boot dpkg -i /var/tmp/relaymesh.deb >"$TMP/dpkg-boot.log" 2>&1; then
	pass "dpkg -i under systemd"
else
	sed 's/^/  /' "$TMP/dpkg-boot.log"
	fail "dpkg -i under systemd"
	finish
fi
postinst_sysctl_line "under systemd" "$TMP/dpkg-boot.log" 'could not apply /usr/lib/sysctl.d/60-relaymesh.conf' \
	"$(short_of_dropin in_boot cat)"
if wait_for 20 in_boot systemctl is-active --quiet relaymesh; then
	pass "relaymesh.service active after install"
else
	in_boot systemctl status relaymesh --no-pager 2>&1 | sed 's/^/  /'
	fail "relaymesh.service not active after install"
	finish
fi

# A reload the agent refuses fails `systemctl reload` with its reason.
pid0=$(in_boot systemctl show -p MainPID --value relaymesh)
in_boot sh -c 'printf "[qos]\nenabled = true\ninterface = \"rmnosuch0\"\nrate = \"100M\"\n" >/etc/relaymesh/conf.d/90-qos.toml'
if in_boot systemctl reload relaymesh >"$TMP/reload.log" 2>&1; then
	fail "systemctl reload succeeded with a qos.interface that does not exist"
elif journal_has 'relaymesh reload: refused; the old config stays in force: qos.interface "rmnosuch0"' &&
	[ "$(in_boot systemctl show -p MainPID --value relaymesh)" = "$pid0" ] && in_boot systemctl is-active --quiet relaymesh; then
	pass "systemctl reload fails for a refused config, the journal says why, the agent runs on"
else
	in_boot journalctl -u relaymesh --no-pager -o cat -n 10 | sed 's/^/  /'
	fail "refused reload: no reason in the journal, or the agent did not run on"
fi
# A good reload succeeds and is applied: the tc tree appears on host0.
in_boot sed -i 's/rmnosuch0/host0/' /etc/relaymesh/conf.d/90-qos.toml
if in_boot systemctl reload relaymesh >"$TMP/reload.log" 2>&1 &&
	in_boot tc qdisc show dev host0 | grep -q 'qdisc htb 524d: root' &&
	in_boot grep -q '"interface": "host0"' /run/relaymesh/qos.json; then
	pass "systemctl reload applies a good config (tc tree on host0, recorded in /run/relaymesh/qos.json)"
else
	sed 's/^/  /' "$TMP/reload.log"
	in_boot journalctl -u relaymesh --no-pager -o cat -n 10 | sed 's/^/  /'
	fail "good reload: not applied"
fi

# kill -9 with a drop-in the service user cannot read: ExecStopPost's
# cleanup removes the tree from the record; the restarts then fail and
# the start limit ends them in `failed` with the reason in the journal.
in_boot chmod 0600 /etc/relaymesh/conf.d/90-qos.toml
in_boot systemctl kill -s KILL relaymesh
if wait_for 20 journal_has 'relaymesh cleanup: host0: removed the relaymesh tc tree' &&
	! in_boot tc qdisc show dev host0 | grep -q 'qdisc htb 524d:'; then
	pass "after kill -9, with the config unreadable, ExecStopPost removed the tc tree from its record"
else
	in_boot journalctl -u relaymesh --no-pager -o cat -n 10 | sed 's/^/  /'
	fail "cleanup after kill -9: tree left on host0 or no removal in the journal"
fi
is_failed() { [ "$(in_boot systemctl is-failed relaymesh)" = failed ]; }
if wait_for 60 is_failed &&
	journal_has 'Start request repeated too quickly' &&
	journal_has 'relaymesh: /etc/relaymesh/relaymesh.toml: config: open /etc/relaymesh/conf.d/90-qos.toml: permission denied'; then
	pass "a config that cannot start ends in failed after $(in_boot systemctl show -p NRestarts --value relaymesh) restarts, the reason in the journal"
else
	in_boot systemctl status relaymesh --no-pager 2>&1 | sed 's/^/  /'
	fail "broken config: not failed by the start limit, or no reason in the journal"
fi

finish

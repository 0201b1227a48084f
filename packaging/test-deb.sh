#!/bin/bash
# packaging/test-deb.sh: build the relaymesh .deb and check it the way an
# operator meets it:
#   1. make deb (packaging/deb.mk)
#   2. lintian: no error, no warning that is not overridden with a reason
#   3. dpkg-deb -c / -I: expected paths, modes, owners, conffiles
#   4. systemd-analyze verify of the unit, and its security exposure score
#   5. as root: install into a fresh Debian 12 (bookworm) minbase chroot;
#      files, user, `relaymesh check`, upgrade in place, remove, purge
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
cleanup() {
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
	DEB=$(ls dist/relaymesh_*_amd64.deb 2>/dev/null | head -n 1)
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
if [ "$(dpkg-deb -f "$DEB" Depends)" = "adduser, libsrt1.5-gnutls" ]; then
	pass "Depends: adduser, libsrt1.5-gnutls (the SRT engine)"
else
	fail "Depends is '$(dpkg-deb -f "$DEB" Depends)', expected 'adduser, libsrt1.5-gnutls'"
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
PRISTINE=$CACHE/bookworm-minbase
# On a real host init-system-helpers is always there (systemd needs it);
# having it here tests that postinst enables the unit. libsrt1.5-gnutls
# is the package's other Depends (dpkg -i does not fetch dependencies).
INCLUDE=adduser,init-system-helpers,libsrt1.5-gnutls
STAMP="bookworm minbase $INCLUDE v1"
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9
if [ "$(cat "$PRISTINE/.relaymesh-ci" 2>/dev/null)" != "$STAMP" ]; then
	echo "making a pristine Debian 12 minbase root in $PRISTINE from $mirror (once)"
	t0=$(date +%s)
	rm -rf --one-file-system "$PRISTINE" "$PRISTINE.new"
	if debootstrap --variant=minbase --include="$INCLUDE" bookworm "$PRISTINE.new" "$mirror" >"$TMP/debootstrap.log" 2>&1; then
		rm -rf "$PRISTINE.new/var/cache/apt/archives/"*.deb
		echo "$STAMP" >"$PRISTINE.new/.relaymesh-ci"
		mv "$PRISTINE.new" "$PRISTINE"
		pass "debootstrap bookworm minbase ($(($(date +%s) - t0)) s)"
	else
		tail -n 20 "$TMP/debootstrap.log"
		fail "debootstrap --variant=minbase bookworm from $mirror"
		finish
	fi
fi
# Work copies left by a run that was killed: unmount, then delete.
for w in "$CACHE"/work.*; do
	[ -d "$w" ] || continue
	kill -0 "${w##*.}" 2>/dev/null && continue
	for m in "$w/proc" "$w/dev/pts"; do
		mountpoint -q "$m" 2>/dev/null && { umount "$m" || umount -l "$m"; }
	done
	rm -rf --one-file-system "$w"
done
ROOT=$CACHE/work.$$
cp -a "$PRISTINE" "$ROOT"
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
	chgrp relaymesh /etc/relaymesh/auth.key /etc/relaymesh/api.token'
for f in "$ROOT"/usr/share/doc/relaymesh/examples/*.toml; do
	run_check "${f#"$ROOT"}"
done
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

# Purge: data, config, statoverride and unit state gone; the account stays.
if in_root dpkg -P relaymesh >"$TMP/dpkg-p.log" 2>&1; then
	pass "dpkg -P relaymesh"
else
	sed 's/^/  /' "$TMP/dpkg-p.log"
	fail "dpkg -P relaymesh"
fi
left=
for p in /var/lib/relaymesh /etc/relaymesh /etc/default/relaymesh /etc/relaymesh/auth.key \
	/etc/systemd/system/multi-user.target.wants/relaymesh.service \
	/var/lib/systemd/deb-systemd-helper-enabled/relaymesh.service.dsh-also; do
	[ -e "$ROOT$p" ] || [ -L "$ROOT$p" ] && left="$left $p"
done
[ -z "$left" ] && pass "purge: data dir, config, secrets and unit state removed" || fail "purge left:$left"
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

finish

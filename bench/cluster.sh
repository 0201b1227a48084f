#!/bin/sh
# Cluster numbers for BENCHMARKS.md (measured, not asserted): runs the
# cluster tests (root: network namespaces) RUNS times with a longer lossy
# run and prints the lines with the numbers: convergence, time for a new
# stream to reach every directory, failover gap after kill -9 and after a
# blackhole, time to declare a dead member, frames lost at 150 ms RTT and
# 2% loss, backbone bytes on the wire per media byte (relay.Status total
# counters of the uplink: SRT data packets' wire bytes, headers and
# retransmissions included, over the media bytes, over every session),
# and the moves and restarts of issue 14.
#
# DUAL=1 also runs TestClusterDualPath (redundancy = "dual": 5 %/2 % loss
# on the two legs, a blackholed leg, kill -9 of the directory's host; 3
# Mbit/s CBR for DUAL_DURATION) and prints its rows: frames each player
# missed, what each merge took from which leg, the edge's per-leg wire
# bytes per media (RTP) byte (only for a leg that never reconnected: a
# leg that reconnected showed more media bytes than wire bytes, 0.92-0.98,
# so the two do not count the same). Without DUAL it is skipped (its lines were
# not printed before, and it adds ~2 min a run).
#
# A run's whole go test output is kept in $LOGDIR (default a new
# directory under /tmp, named at the start), also when it passes, and
# every node's log in $LOGDIR/nodes-N. A failed
# run's numbers are printed too (a frame count short of the sent one is a
# result), its failures after them; the script goes on with the next run
# and exits 1 at the end.
#
#   sudo bench/cluster.sh                  # RUNS=3 LOSS_DURATION=120s
#   DUAL=1 sudo bench/cluster.sh           # and the dual-path rows (DUAL_DURATION=20s)
#   RUN='^TestCluster$|^TestClusterBackboneLoss$' sudo bench/cluster.sh
#                                          # only those tests (go test -run): the kill -9,
#                                          # blackhole and 150 ms RTT + 2 % loss rows
#
# NETLAB_LOCK (default /tmp/netlab.lock) serialises the runs with other
# netns tests (flock), so two clusters never share the host's CPU.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
LOSS_DURATION=${LOSS_DURATION:-120s}
DUAL=${DUAL:-0}
DUAL_DURATION=${DUAL_DURATION:-20s}
RUN=${RUN:-TestCluster}
NETLAB_LOCK=${NETLAB_LOCK:-/tmp/netlab.lock}
LOGDIR=${LOGDIR:-$(mktemp -d /tmp/cluster-bench.XXXXXX)}
mkdir -p "$LOGDIR"
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), logs in $LOGDIR"
set -- -skip TestClusterDualPath
lines='converged in|every directory|SRT player on|kill -9|blackhole of|frames lost|of [0-9]+ frames|bytes on the wire|RTT estimates|first frame after|backbone-only block|republish through|drain of sin|went to|what fra played|^--- (PASS|FAIL)'
if [ "$DUAL" = 1 ]; then
	set --
	lines="$lines"'|^=== RUN +TestClusterDualPath/|player on [a-z]+( \(not checked\))?: [0-9]+ (video )?frames|merge \(window|esin leg [0-9]|hub: [0-9]+ frames|killing '
fi
failed=0
i=1
while [ "$i" -le "$RUNS" ]; do
	out="$LOGDIR/run-$i.log"
	echo "== run $i of $RUNS (tests: $RUN; lossy stream: $LOSS_DURATION; dual: $DUAL), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	RELAYMESH_LOSS_DURATION=$LOSS_DURATION RELAYMESH_DUAL_DURATION=$DUAL_DURATION RELAYMESH_CLUSTER_LOGS="$LOGDIR/nodes-$i" \
		flock "$NETLAB_LOCK" go test -count=1 -timeout 15m -v -run "$RUN" "$@" ./test/ >"$out" 2>&1 || {
		failed=$((failed + 1)); echo "run $i FAILED (its numbers follow; whole output in $out):"
		grep -E '^ *(--- FAIL|panic:|cluster[a-z_]*_test.go:[0-9]+: .*(want|misses|got [0-9]+|did not|failed))' "$out" | head -20; }
	grep -E "$lines" "$out" | sed -e 's/^ *cluster[a-z_]*_test.go:[0-9]*: /  /' -e 's/^=== RUN *//' |
		awk '/esin leg [0-9]+ to/ && match($0, /[0-9]+ media bytes, [0-9]+ wire bytes/) {
			split(substr($0, RSTART, RLENGTH), f, " ")
			if (/ 0 reconnects$/ && f[1] > 0) $0 = $0 sprintf(" (wire/media %.3f)", f[4] / f[1])
			else $0 = $0 " (wire/media: not comparable, the leg reconnected)"
		} { print }'
	echo "   load average after run $i: $(cut -d' ' -f1-3 /proc/loadavg)"
	i=$((i + 1))
done
if [ "$failed" -gt 0 ]; then
	echo "$failed of $RUNS runs failed (logs in $LOGDIR)"; exit 1
fi

#!/bin/sh
# Cluster numbers for BENCHMARKS.md (measured, not asserted): runs the
# cluster tests (root: network namespaces) RUNS times with a longer lossy
# run and prints the lines with the numbers: convergence, time for a new
# stream to reach every directory, failover gap after kill -9 and after a
# blackhole, time to declare a dead member, frames lost at 150 ms RTT and
# 2% loss, backbone bytes on the wire per media byte (relay.Status total
# counters of the uplink: SRT data packets' wire bytes, headers and
# retransmissions included, over the media bytes, over every session).
#
#   sudo bench/cluster.sh            # RUNS=3 LOSS_DURATION=120s
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
LOSS_DURATION=${LOSS_DURATION:-120s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
i=1
while [ "$i" -le "$RUNS" ]; do
	echo "== run $i of $RUNS (lossy stream: $LOSS_DURATION)"
	RELAYMESH_LOSS_DURATION=$LOSS_DURATION go test -count=1 -timeout 15m -v -run 'TestCluster' ./test/ >"$out" 2>&1 || {
		echo "run $i failed:"; tail -50 "$out"; exit 1; }
	grep -E 'converged in|every directory|SRT player on|kill -9|blackhole of|frames lost|of [0-9]+ frames|bytes on the wire|RTT estimates|first frame after|backbone-only block|republish through|drain of sin|went to|what fra played' "$out" | sed 's/^ *cluster[a-z_]*_test.go:[0-9]*: /  /'
	i=$((i + 1))
done

#!/usr/bin/env bash
# Issue 24's soak run: call churn at a steady rate with RTP both ways on an
# active node (its bus a separate nats-server, calls persisted to Redis by
# redis-sync) and a standby node of its redundancy group, each in a network
# namespace; the bus is restarted at a third of the run and redis-server at
# two thirds, then the churn drains. Pass: 0 calls lost, no port left in a
# call (every port portd holds is in ng-ctl's leased stock) and descriptors
# within a small constant of the start; memory,
# node-state size and Redis keys are printed for a human to judge.
#
#   sudo bench/soak.sh [DURATION]        (default 30m; 2m for a quick look)
#
# It is pkg/nodetest's TestSoak (see its comment for the knobs:
# RTPKIT_SOAK_RATE, RTPKIT_SOAK_LIFE, RTPKIT_SOAK_PPS, RTPKIT_SOAK_GAP,
# RTPKIT_SOAK_SAMPLE, RTPKIT_SOAK_BUS_AT, RTPKIT_SOAK_REDIS_AT, passed
# through from the environment). Needs root, redis-server and nats-server
# (Debian). The JSON report goes to $SOAK_JSON (default soak-<time>.json in
# the current directory) and the test's log to the same name with .log.
set -euo pipefail
DUR=${1:-30m}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$PWD
export PATH=/usr/local/go/bin:$PATH
STAMP=$(date +%Y%m%d-%H%M%S)
JSON=${SOAK_JSON:-$OUT/soak-$STAMP.json}
LOG=${JSON%.json}.log
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
cd "$ROOT"
go build -o "$BIN/" ./cmd/...
# The test's own timeout: the run, the drain (the longest call life), setup
# and teardown.
case $DUR in
  *[0-9]h) secs=$(( ${DUR%h} * 3600 )) ;;
  *[0-9]m) secs=$(( ${DUR%m} * 60 )) ;;
  *[0-9]s) secs=${DUR%s} ;;
  *[!0-9]*) echo "DURATION: whole hours, minutes or seconds (30m, 90s, 1h); got $DUR" >&2; exit 2 ;;
  *) secs=$DUR; DUR=${DUR}s ;;
esac
timeout=$(( secs + 900 ))s
status=0
RTPKIT_SOAK=$DUR RTPKIT_SOAK_JSON=$JSON RTPKIT_TEST_BINDIR=$BIN \
  go test -count=1 -run '^TestSoak$' -v -timeout "$timeout" ./pkg/nodetest/ >"$LOG" 2>&1 || status=$?
# The text report (the JSON is in the file).
sed -n '/SOAK /,/verdict:/p' "$LOG" | sed 's/^ *soak_test.go:[0-9]*: //'
grep -E '^(--- |FAIL|ok|PASS)' "$LOG" || true
echo "report: $JSON"
echo "log:    $LOG"
exit $status

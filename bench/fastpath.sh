#!/usr/bin/env bash
# fastpath.sh [CALLS] [SECONDS]: the in-kernel fast path's cost, in one run.
#
# A node in network namespaces, CALLS calls (default 1000) at 20000 and
# 40000 packets/s, with --fast-path=on, with --fast-path=off and with no
# proxy at all (plain routing through the node's namespace), rotated over
# FASTPATH_ROUNDS rounds (default 3) of SECONDS each (default 5); it prints
# the whole machine's CPU per forwarded packet of each, and the fast
# path's cost above routing as a share of the userspace path's. Needs root
# and a kernel that loads the eBPF program. It is compare.sh's fast-path
# part (pkg/rtpfwd TestMeasureFastPathNode) on its own.
set -euo pipefail
CALLS=${1:-1000}
SECS=${2:-5}
exec env FASTPATH=only FASTPATH_SECONDS="$SECS" "$(dirname "$0")/compare.sh" "$CALLS" "${SECS}s"

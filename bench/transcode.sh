#!/usr/bin/env bash
# Transcoding cost side by side (issue 29): rtpkit and Debian's rtpengine on
# loopback in one run, both with --delete-delay=0, rtpengine logging to
# stderr at its default level and at --log-level=4 (the faster is the
# reference). For each call count of CALLS (default "100 500"), each proxy
# gets `rtpctl bench media --transcode=CODEC` (CODEC default opus): every
# call's caller speaks PCMU, its callee only CODEC (offered by the proxy's
# codec transcode), 20 ms packets both ways; the proxy's whole CPU (its
# processes with their children) over DURATION (default 10s) per call, the
# calls one core would carry at that cost, and the packets lost or left
# untranscoded. ROUNDS (default 2) alternates the proxies; the best round of
# each is printed.
#
#   bench/transcode.sh                # from the repository, as root or not
#   CALLS="100 500" CODEC=opus DURATION=10s ROUNDS=2 bench/transcode.sh
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a CALLS <<<"${CALLS:-100 500}"
CODEC=${CODEC:-opus}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
command -v rtpengine >/dev/null || { echo "transcode.sh: needs rtpengine (Debian rtpengine-daemon)" >&2; exit 1; }
command -v jq >/dev/null || { echo "transcode.sh: needs jq" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	sleep 1
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_udp_port, start_rtpengine (bench/lib.sh).
. bench/lib.sh

make -s build
ulimit -n 65536 2>/dev/null || true
declare -A NG PID
NG[rtpkit]=127.0.0.1:$(free_udp_port)
bin/rtpctl up --nats-listen=127.0.0.1:0 --state-dir="$TMP/state" --interface=127.0.0.1 \
	--listen-ng="${NG[rtpkit]}" --delete-delay=0 --port-min=20000 --port-max=25999 >"$TMP/rtpkit.log" 2>&1 &
PID[rtpkit]=$!
PIDS+=("$!")
for _ in $(seq 300); do grep -q 'is up' "$TMP/rtpkit.log" && break; sleep 0.1; done
for pid in $(sed -nE 's/^  [a-z-]+ +running, pid ([0-9]+)$/\1/p' "$TMP/rtpkit.log"); do PIDS+=("$pid"); done
start_rtpengine rtpengine-l6 8000 13999
start_rtpengine rtpengine-l4 14000 19999 --log-level=4
TARGETS=(rtpkit rtpengine-l6 rtpengine-l4)

for n in "${CALLS[@]}"; do
	for r in $(seq "$ROUNDS"); do
		for t in "${TARGETS[@]}"; do
			echo "== $t, $n calls PCMU⇄$CODEC, round $r" >&2
			bin/rtpctl bench media --transcode="$CODEC" --ng="${NG[$t]}" --pids="${PID[$t]}" --calls="$n" \
				--duration="$DURATION" --label="$t" --json >"$TMP/$t-$n-$r.json" || echo '{}' >"$TMP/$t-$n-$r.json"
		done
	done
done

printf '\nPCMU⇄%s transcoding, %s per run, best of %s rounds (rtpengine in userspace, logging to stderr):\n' "$CODEC" "$DURATION" "$ROUNDS"
printf '%-13s %6s %10s %10s %12s %14s %14s\n' target calls sent lost "wrong codec" "CPU %/call" "calls/core"
for n in "${CALLS[@]}"; do
	best_engine=
	for t in "${TARGETS[@]}"; do
		best=$(for r in $(seq "$ROUNDS"); do jq -r '.cpu_percent_per_call // empty' "$TMP/$t-$n-$r.json"; done | sort -g | head -1)
		[ -n "$best" ] || continue
		r=$(for r in $(seq "$ROUNDS"); do echo "$(jq -r '.cpu_percent_per_call // 1e9' "$TMP/$t-$n-$r.json") $r"; done | sort -g | head -1 | cut -d' ' -f2)
		f="$TMP/$t-$n-$r.json"
		printf '%-13s %6s %10s %10s %12s %14.3f %14.0f\n' "$t" "$n" "$(jq -r .sent "$f")" "$(jq -r .lost "$f")" "$(jq -r .wrong_codec "$f")" \
			"$(jq -r .cpu_percent_per_call "$f")" "$(jq -r .calls_per_core "$f")"
	done
done

#!/usr/bin/env bash
# compare.sh [CALLS] [DURATION]: media-path CPU of rtpkit against rtpengine.
#
# Builds rtpkit, starts a node (rtpctl up) and rtpengine side by side on
# free ng ports with disjoint media port ranges (below the ephemeral range
# that the load's own sockets use), then runs `rtpctl bench media` at 20000 and
# 40000 packets/s against each in turn and prints a table ("load µs/pkt"
# is the load generator's own CPU per packet sent, for reference). The CPU counted
# is that of the proxy's processes only: rtpctl up with all its children
# (the bus runs inside it), and the rtpengine process.
set -euo pipefail

CALLS=${1:-1000}
DURATION=${2:-10s}
RATES=(20000 40000)
FLOOD=${FLOOD:-100000} # the flooded-stream run: 20000 pps on the calls plus one stream at this rate

cd "$(dirname "$0")/.."
GO=${GO:-go}
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go
command -v jq >/dev/null || { echo "compare.sh: needs jq" >&2; exit 1; }
command -v rtpengine >/dev/null || { echo "compare.sh: needs rtpengine" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=() # every process this script started, killed by pid on exit

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for _ in $(seq 50); do
		local alive=0
		for pid in "${PIDS[@]}"; do
			if kill -0 "$pid" 2>/dev/null; then alive=1; fi
		done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_udp_port prints a UDP port on 127.0.0.1 nobody listens on.
free_udp_port() {
	local p
	for p in $(shuf -i 12000-19999 -n 100); do
		if [ -z "$(ss -Hulnp "sport = :$p" 2>/dev/null)" ]; then
			echo "$p"
			return
		fi
	done
	echo "compare.sh: no free port" >&2
	return 1
}

# wait_for FILE REGEX SECONDS PID waits for a line in a log.
wait_for() {
	local i
	for i in $(seq $(($3 * 10))); do
		if grep -qE "$2" "$1"; then return 0; fi
		if ! kill -0 "$4" 2>/dev/null; then break; fi
		sleep 0.1
	done
	echo "compare.sh: no '$2' in $1:" >&2
	cat "$1" >&2
	return 1
}

echo "building..." >&2
make -s build
ln -s "$PWD/bin/rtpctl" "$TMP/rtpctl"

# rtpkit
KIT_NG=127.0.0.1:$(free_udp_port)
bin/rtpctl up --nats-listen=127.0.0.1:0 --state-dir="$TMP/state" --interface=127.0.0.1 \
	--listen-ng="$KIT_NG" --delete-delay=0 --log-level=warn \
	--port-min=20000 --port-max=25999 >"$TMP/rtpkit.log" 2>&1 &
KIT_PID=$!
PIDS+=("$KIT_PID")
wait_for "$TMP/rtpkit.log" 'is up' 30 "$KIT_PID"
# Its children too, so that none outlives the script if rtpctl up dies.
for pid in $(sed -nE 's/^  [a-z-]+ +running, pid ([0-9]+)$/\1/p' "$TMP/rtpkit.log"); do
	PIDS+=("$pid")
done

# rtpengine
RE_NG=127.0.0.1:$(free_udp_port)
rtpengine --config-file=none --table=-1 --foreground --interface=127.0.0.1 --listen-ng="$RE_NG" \
	--delete-delay=0 --log-stderr --log-level=3 --port-min=26000 --port-max=31999 >"$TMP/rtpengine.log" 2>&1 &
RE_PID=$!
PIDS+=("$RE_PID")
for _ in $(seq 100); do
	[ -n "$(ss -Hulnp "sport = :${RE_NG##*:}" 2>/dev/null)" ] && break
	kill -0 "$RE_PID" 2>/dev/null || { cat "$TMP/rtpengine.log" >&2; exit 1; }
	sleep 0.1
done
sleep 0.5

echo "rtpkit    ng $KIT_NG pid $KIT_PID" >&2
echo "rtpengine ng $RE_NG pid $RE_PID" >&2

# bench TARGET NG PID RATE [FLOOD] runs one load and writes TMP/TARGET-RATE.json
# (TMP/TARGET-flood.json with a flooded stream).
bench() {
	local out="$TMP/$1-$4.json" extra=()
	if [ -n "${5:-}" ]; then
		out="$TMP/$1-flood.json"
		extra=(--flood="$5")
		echo "== $1 at $4 pps + one stream flooded at $5 pps, $CALLS calls, $DURATION" >&2
	else
		echo "== $1 at $4 pps, $CALLS calls, $DURATION" >&2
	fi
	"$TMP/rtpctl" bench media --ng="$2" --pids="$3" --calls="$CALLS" --pps="$4" --duration="$DURATION" \
		--label="$1" --json "${extra[@]}" >"$out"
	sleep 1
}

first=rtpkit
for rate in "${RATES[@]}"; do
	# Alternate which proxy goes first at each rate.
	if [ "$first" = rtpkit ]; then
		bench rtpkit "$KIT_NG" "$KIT_PID" "$rate"
		bench rtpengine "$RE_NG" "$RE_PID" "$rate"
		first=rtpengine
	else
		bench rtpengine "$RE_NG" "$RE_PID" "$rate"
		bench rtpkit "$KIT_NG" "$KIT_PID" "$rate"
		first=rtpkit
	fi
done

# The flooded stream: does it disturb the other calls, and how much of it passes?
bench rtpengine "$RE_NG" "$RE_PID" 20000 "$FLOOD"
bench rtpkit "$KIT_NG" "$KIT_PID" 20000 "$FLOOD"

printf '\n%-10s %8s %10s %10s %8s %9s %9s %12s %10s %12s\n' target "rate" "offered" "forwarded" "loss" "p50 µs" "p99 µs" "CPU µs/pkt" "kit/engine" "load µs/pkt"
for rate in "${RATES[@]}"; do
	kit=$(jq -r '.cpu_us_per_packet' "$TMP/rtpkit-$rate.json")
	eng=$(jq -r '.cpu_us_per_packet' "$TMP/rtpengine-$rate.json")
	ratio=$(jq -n --argjson a "$kit" --argjson b "$eng" 'if $b > 0 then ($a / $b * 100 | round / 100) else "-" end')
	for t in rtpkit rtpengine; do
		r=""
		[ "$t" = rtpkit ] && r=$ratio
		jq -r --arg r "$r" '[.target, .target_pps, (.offered_pps|round), (.forwarded_pps|round),
			(if .sent > 0 then (.lost / .sent * 10000 | round / 100 | tostring) + "%" else "-" end),
			(.latency_p50_us|round), (.latency_p99_us|round), (.cpu_us_per_packet * 100 | round / 100), $r,
			(if .sent > 0 then (.load_cpu_seconds * 1e6 / .sent * 100 | round / 100) else "-" end)] | @tsv' \
			"$TMP/$t-$rate.json" |
			awk -F'\t' '{printf "%-10s %8s %10s %10s %8s %9s %9s %12s %10s %12s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}'
	done
done

printf '\nOne stream flooded at %s pps on top of 20000 pps over %s calls:\n' "$FLOOD" "$CALLS"
printf '%-10s %10s %8s %9s %9s %14s %16s\n' target forwarded loss "p50 µs" "p99 µs" "flood sent pps" "flood forwarded"
for t in rtpkit rtpengine; do
	jq -r '[.target, (.forwarded_pps|round),
		(if .sent > 0 then (.lost / .sent * 10000 | round / 100 | tostring) + "%" else "-" end),
		(.latency_p50_us|round), (.latency_p99_us|round), (.flood_sent_pps|round), (.flood_forwarded_pps|round)] | @tsv' \
		"$TMP/$t-flood.json" |
		awk -F'\t' '{printf "%-10s %10s %8s %9s %9s %14s %16s\n", $1, $2, $3, $4, $5, $6, $7}'
done

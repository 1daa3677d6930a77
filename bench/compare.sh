#!/usr/bin/env bash
# compare.sh [CALLS] [DURATION]: media-path CPU of rtpkit against rtpengine.
#
# Builds rtpkit, starts a node (rtpctl up, its production defaults but
# --delete-delay=0) and rtpengine twice, logging to stderr at its default
# level and at --log-level=4 (see below), side by side on
# free ng ports with disjoint media port ranges (below the ephemeral range
# that the load's own sockets use), then runs `rtpctl bench media` at 20000 and
# 40000 packets/s against each in turn and prints a table ("load µs/pkt"
# is the load generator's own CPU per packet sent, for reference). The CPU counted
# is that of the proxy's processes only: rtpctl up with all its children
# (the bus runs inside it), and the rtpengine process. The thin relay
# (bench/thinrelay: one epoll loop, recvmmsg/sendmmsg, a socket per party,
# nothing else) is measured alongside as the floor.
#
# Then the SRTP columns (issue 27): the same proxies (not the thin relay,
# which does no SRTP) converting SDES-SRTP at SRTP_RATES (default 20000
# and 40000 packets/s), `rtpctl bench media --srtp=MODE` for each MODE of
# SRTP_MODES: rtp-srtp (party A plain RTP, party B SRTP with SRTP_SUITE,
# default AES_CM_128_HMAC_SHA1_80) and srtp-srtp (A SRTP with SRTP_SUITE, B
# with another suite, so that every packet is decrypted and encrypted
# again); SRTP_MODES=rtp-dtls (issue 28) has party B a DTLS-SRTP client
# instead (one handshake per call, the proxy the server, during setup:
# the setup µs/call column); rtpengine runs with --table=-1, so it
# converts in userspace.
# The table gives CPU µs per forwarded packet, loss, packets that did not
# decrypt, rtpkit over the better rtpengine (target ≤ 0.7) and each
# target's SRTP cost over its plain RTP run at the same rate. SRTP=0 skips
# that part; SRTP=only runs nothing else (no plain rows, no fast path).
#
# Then, as root on a kernel that can load the eBPF program, the fast-path
# columns (issue 10): TestMeasureFastPathNode (pkg/rtpfwd) runs a node in
# network namespaces with --fast-path=on, with --fast-path=off and, as the
# floor, no proxy (the node's namespace routes), alternately over
# FASTPATH_ROUNDS rounds (default 3), with the same CALLS and rates, and
# the script prints the medians of the whole machine's CPU (/proc/stat) per
# forwarded packet. FASTPATH=0 skips that part; FASTPATH=only runs nothing
# else (no build, no rtpengine needed). FASTPATH_SECONDS is the length of
# each of its runs (default: DURATION if given in seconds, at most 10).
set -euo pipefail

CALLS=${1:-1000}
DURATION=${2:-10s}
RATES=(20000 40000)
FLOOD=${FLOOD:-100000} # the flooded-stream run: 20000 pps on the calls plus one stream at this rate
FASTPATH=${FASTPATH:-1}
SRTP=${SRTP:-1}
read -r -a SRTP_RATES <<<"${SRTP_RATES:-20000 40000}"
read -r -a SRTP_MODES <<<"${SRTP_MODES:-rtp-srtp srtp-srtp}"
SRTP_SUITE=${SRTP_SUITE:-AES_CM_128_HMAC_SHA1_80}
if [ "$SRTP" = only ]; then
	FASTPATH=0
fi

cd "$(dirname "$0")/.."
GO=${GO:-go}
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go
command -v jq >/dev/null || { echo "compare.sh: needs jq" >&2; exit 1; }
if [ "$FASTPATH" != only ]; then
	command -v rtpengine >/dev/null || { echo "compare.sh: needs rtpengine" >&2; exit 1; }
fi

TMP=$(mktemp -d)
PIDS=() # every process this script started, killed by pid on exit

# stop_all stops every process this script started (TERM, then KILL).
stop_all() {
	local pid
	[ "${#PIDS[@]}" -gt 0 ] || return 0
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
	PIDS=()
}

cleanup() {
	stop_all
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_udp_port, start_rtpengine (bench/lib.sh).
. bench/lib.sh

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

# compare_proxies is the rtpkit / rtpengine comparison.
compare_proxies() {
echo "building..." >&2
make -s build
ln -s "$PWD/bin/rtpctl" "$TMP/rtpctl"

# rtpkit
KIT_NG=127.0.0.1:$(free_udp_port)
bin/rtpctl up --nats-listen=127.0.0.1:0 --state-dir="$TMP/state" --interface=127.0.0.1 \
	--listen-ng="$KIT_NG" --delete-delay=0 \
	--port-min=20000 --port-max=25999 >"$TMP/rtpkit.log" 2>&1 &
KIT_PID=$!
PIDS+=("$KIT_PID")
wait_for "$TMP/rtpkit.log" 'is up' 30 "$KIT_PID"
# Its children too, so that none outlives the script if rtpctl up dies.
for pid in $(sed -nE 's/^  [a-z-]+ +running, pid ([0-9]+)$/\1/p' "$TMP/rtpkit.log"); do
	PIDS+=("$pid")
done

# rtpengine as its best operators run it: logging to stderr (a working log
# sink), once at its default level (rtpengine-l6) and once at
# --log-level=4 (rtpengine-l4); the one with less CPU per packet at each
# rate is the reference.
declare -A NG PID
NG[rtpkit]=$KIT_NG PID[rtpkit]=$KIT_PID
start_rtpengine rtpengine-l6 8000 13999
start_rtpengine rtpengine-l4 14000 19999 --log-level=4

# The floor: bench/thinrelay, the least a relay driven over ng does (one
# epoll loop, recvmmsg/sendmmsg, a socket per party, nothing else).
"$GO" build -o "$TMP/thinrelay" ./bench/thinrelay
NG[thin-relay]=127.0.0.1:$(free_udp_port)
"$TMP/thinrelay" -listen "${NG[thin-relay]}" 2>"$TMP/thin-relay.log" &
PID[thin-relay]=$!
PIDS+=("$!")
sleep 0.5
echo "rtpkit    ng $KIT_NG pid $KIT_PID" >&2
ENGINES=(rtpengine-l6 rtpengine-l4)
TARGETS=(rtpkit "${ENGINES[@]}" thin-relay)

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

# bench_srtp TARGET NG PID RATE MODE runs one SRTP load and writes
# TMP/TARGET-MODE-RATE.json.
bench_srtp() {
	echo "== $1 at $4 pps, SRTP $5 ($SRTP_SUITE), $CALLS calls, $DURATION" >&2
	"$TMP/rtpctl" bench media --ng="$2" --pids="$3" --calls="$CALLS" --pps="$4" --duration="$DURATION" \
		--label="$1" --json --srtp="$5" --srtp-suite="$SRTP_SUITE" >"$TMP/$1-$5-$4.json"
	sleep 1
}

if [ "$SRTP" != only ]; then
	plain_rows
fi
if [ "$SRTP" != 0 ]; then
	srtp_rows
fi
}

# plain_rows runs and prints the plain RTP comparison (and the flooded
# stream).
plain_rows() {
# Rotate which target goes first at each rate.
turn=0
for rate in "${RATES[@]}"; do
	for i in "${!TARGETS[@]}"; do
		t=${TARGETS[$(((turn + i) % ${#TARGETS[@]}))]}
		bench "$t" "${NG[$t]}" "${PID[$t]}" "$rate"
	done
	turn=$((turn + 1))
done

# The flooded stream: does it disturb the other calls, and how much of it passes?
for t in "${TARGETS[@]}"; do bench "$t" "${NG[$t]}" "${PID[$t]}" 20000 "$FLOOD"; done

printf '\n%-13s %8s %10s %10s %8s %9s %9s %12s %10s %10s %12s\n' target "rate" "offered" "forwarded" "loss" "p50 µs" "p99 µs" "CPU µs/pkt" "kit/engine" "kit/thin" "load µs/pkt"
for rate in "${RATES[@]}"; do
	kit=$(jq -r '.cpu_us_per_packet' "$TMP/rtpkit-$rate.json")
	# rtpengine at its best: the variant with less CPU per packet.
	eng=""
	for e in "${ENGINES[@]}"; do
		v=$(jq -r '.cpu_us_per_packet' "$TMP/$e-$rate.json")
		if [ -z "$eng" ] || jq -e -n --argjson a "$v" --argjson b "$eng" '$a < $b' >/dev/null; then eng=$v; fi
	done
	thin=$(jq -r '.cpu_us_per_packet' "$TMP/thin-relay-$rate.json")
	ratio=$(jq -n --argjson a "$kit" --argjson b "$eng" 'if $b > 0 then ($a / $b * 100 | round / 100) else "-" end')
	tratio=$(jq -n --argjson a "$kit" --argjson b "$thin" 'if $b > 0 then ($a / $b * 100 | round / 100) else "-" end')
	for t in "${TARGETS[@]}"; do
		r="" tr=""
		[ "$t" = rtpkit ] && r=$ratio tr=$tratio
		jq -r --arg r "$r" --arg tr "$tr" --arg t "$t" '[$t, .target_pps, (.offered_pps|round), (.forwarded_pps|round),
			(if .sent > 0 then (.lost / .sent * 10000 | round / 100 | tostring) + "%" else "-" end),
			(.latency_p50_us|round), (.latency_p99_us|round), (.cpu_us_per_packet * 100 | round / 100), $r, $tr,
			(if .sent > 0 then (.load_cpu_seconds * 1e6 / .sent * 100 | round / 100) else "-" end)] | @tsv' \
			"$TMP/$t-$rate.json" |
			awk -F'\t' '{printf "%-13s %8s %10s %10s %8s %9s %9s %12s %10s %10s %12s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11}'
	done
done
echo "(kit/engine: rtpkit's CPU per packet over the better rtpengine's at that rate; kit/thin: over the thin relay's)"
printf '\nKernel drops (datagrams): at the proxy'"'"'s sockets / the load generator'"'"'s; UDP receive / send buffer errors\n'
for rate in "${RATES[@]}"; do
	for t in "${TARGETS[@]}"; do
		jq -r --arg t "$t" '[$t, .target_pps, (.kernel_drops.other_sockets // "-"), (.kernel_drops.load_sockets // "-"),
			(.kernel_drops.rcvbuf_errors // "-"), (.kernel_drops.sndbuf_errors // "-")] | @tsv' "$TMP/$t-$rate.json" |
			awk -F'\t' '{printf "%-13s %8s %10s / %-10s %8s / %s\n", $1, $2, $3, $4, $5, $6}'
	done
done

printf '\nOne stream flooded at %s pps on top of 20000 pps over %s calls:\n' "$FLOOD" "$CALLS"
printf '%-13s %10s %8s %9s %9s %14s %16s\n' target forwarded loss "p50 µs" "p99 µs" "flood sent pps" "flood forwarded"
for t in "${TARGETS[@]}"; do
	jq -r --arg t "$t" '[$t, (.forwarded_pps|round),
		(if .sent > 0 then (.lost / .sent * 10000 | round / 100 | tostring) + "%" else "-" end),
		(.latency_p50_us|round), (.latency_p99_us|round), (.flood_sent_pps|round), (.flood_forwarded_pps|round)] | @tsv' \
		"$TMP/$t-flood.json" |
		awk -F'\t' '{printf "%-13s %10s %8s %9s %9s %14s %16s\n", $1, $2, $3, $4, $5, $6, $7}'
done
}

# srtp_rows runs and prints the SRTP comparison: rtpkit and both
# rtpengines, each mode at each rate, in a rotating order.
srtp_rows() {
local targets=(rtpkit "${ENGINES[@]}") turn=0 rate mode i t
for mode in "${SRTP_MODES[@]}"; do
	for rate in "${SRTP_RATES[@]}"; do
		for i in "${!targets[@]}"; do
			t=${targets[$(((turn + i) % ${#targets[@]}))]}
			bench_srtp "$t" "${NG[$t]}" "${PID[$t]}" "$rate" "$mode"
		done
		turn=$((turn + 1))
	done
done

printf '\nSRTP (%s; rtpengine in userspace), %s calls, %s per run:\n' "$SRTP_SUITE" "$CALLS" "$DURATION"
printf '%-13s %-10s %8s %10s %10s %8s %9s %9s %12s %10s %10s %8s %12s\n' target mode rate offered forwarded loss "p50 µs" "p99 µs" "CPU µs/pkt" "kit/engine" "over RTP" "SRTP bad" "setup µs/call"
for mode in "${SRTP_MODES[@]}"; do
	for rate in "${SRTP_RATES[@]}"; do
		local kit eng v e ratio r plain over
		kit=$(jq -r '.cpu_us_per_packet' "$TMP/rtpkit-$mode-$rate.json")
		eng=""
		for e in "${ENGINES[@]}"; do
			v=$(jq -r '.cpu_us_per_packet' "$TMP/$e-$mode-$rate.json")
			if [ -z "$eng" ] || jq -e -n --argjson a "$v" --argjson b "$eng" '$a < $b' >/dev/null; then eng=$v; fi
		done
		ratio=$(jq -n --argjson a "$kit" --argjson b "$eng" 'if $b > 0 then ($a / $b * 100 | round / 100) else "-" end')
		for t in "${targets[@]}"; do
			r=""
			[ "$t" = rtpkit ] && r=$ratio
			# The target's plain RTP run at the same rate, if there was one.
			plain=0
			[ -f "$TMP/$t-$rate.json" ] && plain=$(jq -r '.cpu_us_per_packet' "$TMP/$t-$rate.json")
			jq -r --arg r "$r" --arg t "$t" --arg m "$mode" --argjson plain "$plain" '[$t, $m, .target_pps, (.offered_pps|round), (.forwarded_pps|round),
				(if .sent > 0 then (.lost / .sent * 10000 | round / 100 | tostring) + "%" else "-" end),
				(.latency_p50_us|round), (.latency_p99_us|round), (.cpu_us_per_packet * 100 | round / 100), $r,
				(if $plain > 0 then (.cpu_us_per_packet / $plain * 100 | round / 100) else "-" end),
				((.srtp_failures // 0) + (.srtp_warmup_failures // 0)), ((.setup_cpu_us_per_call // 0) | round)] | @tsv' \
				"$TMP/$t-$mode-$rate.json" |
				awk -F'\t' '{printf "%-13s %-10s %8s %10s %10s %8s %9s %9s %12s %10s %10s %8s %12s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13}'
		done
	done
done
echo "(kit/engine: rtpkit's CPU per packet over the better rtpengine's at that mode and rate, target ≤ 0.7 with 0 loss;"
echo " over RTP: the target's CPU per packet over its plain RTP run at that rate; SRTP bad: packets that did not"
echo " decrypt at their SRTP party, warm-up included; setup µs/call: the target's CPU over the calls' setup per call,"
echo " offer, answer and in rtp-dtls the call's DTLS handshake, the target being the server: 1e6 over it is"
echo " handshakes per core-second)"
}

# fastpath_columns runs the fast-path measurement (see the header) and
# prints its table; it returns non-zero if the measurement failed.
fastpath_columns() {
	local secs=${FASTPATH_SECONDS:-}
	if [ -z "$secs" ]; then
		secs=5
		if [[ "$DURATION" =~ ^([0-9]+)s$ ]]; then
			secs=${BASH_REMATCH[1]}
			[ "$secs" -le 10 ] || secs=10
		fi
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "fast path: skipped (needs root: network namespaces, BPF)" >&2
		return 0
	fi
	if [ ! -e /sys/kernel/btf/vmlinux ]; then
		echo "fast path: skipped (the kernel has no BTF)" >&2
		return 0
	fi
	local rates
	rates=$(IFS=,; echo "${RATES[*]}")
	echo "== fast path: $CALLS calls at $rates pps, ${secs}s per run, ${FASTPATH_ROUNDS:-3} rounds of fast path / userspace / routing" >&2
	local json="$TMP/fastpath.json" log="$TMP/fastpath.log"
	if ! RTPKIT_FASTPATH_MEASURE=1 RTPKIT_FASTPATH_JSON="$json" RTPKIT_FASTPATH_CALLS="$CALLS" RTPKIT_FASTPATH_RATES="$rates" \
		RTPKIT_FASTPATH_SECONDS="$secs" RTPKIT_FASTPATH_ROUNDS="${FASTPATH_ROUNDS:-3}" \
		"$GO" test -count=1 -run '^TestMeasureFastPathNode$' -v -timeout 20m ./pkg/rtpfwd >"$log" 2>&1; then
		echo "fast path: the measurement failed:" >&2
		tail -50 "$log" >&2
		return 1
	fi
	if grep -q -- '--- SKIP: TestMeasureFastPathNode' "$log"; then
		echo "fast path: skipped: $(grep -m1 -A1 -- '--- SKIP' "$log" | tail -1 | sed 's/^ *//')" >&2
		return 0
	fi
	printf '\nIn-kernel fast path (issue 10): whole-machine CPU (/proc/stat, all CPUs) per forwarded packet, medians of %s rounds, %s calls\n' \
		"$(jq -r .config.rounds "$json")" "$CALLS"
	printf '%8s %9s %9s %9s %10s %14s %6s %14s %14s %14s\n' rate "fast µs" "user µs" "route µs" "fast/user" "above routing" lost "fast p50/p99" "user p50/p99" "route p50/p99"
	jq -r '.summary[] | [.rate_pps, (.fast_us_per_packet*100|round/100), (.userspace_us_per_packet*100|round/100),
		(.routing_us_per_packet*100|round/100), ((.ratio*100|round|tostring) + "%"), ((.ratio_above_routing*100|round|tostring) + "%"),
		.lost + .bad, "\(.fast_p50_us|round)/\(.fast_p99_us|round)", "\(.userspace_p50_us|round)/\(.userspace_p99_us|round)",
		"\(.routing_p50_us|round)/\(.routing_p99_us|round)"] | @tsv' "$json" |
		awk -F'\t' '{printf "%8s %9s %9s %9s %10s %14s %6s %14s %14s %14s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}'
	printf '\nThe same without the CPU of unrelated processes running meanwhile (all but the test, its node and kernel threads):\n'
	printf '%8s %12s %9s %9s %9s %10s %14s\n' rate "other µs" "fast µs" "user µs" "route µs" "fast/user" "above routing"
	jq -r '.summary[] | [.rate_pps, (.other_processes_us_per_packet*100|round/100), (.clean_fast_us_per_packet*100|round/100),
		(.clean_userspace_us_per_packet*100|round/100), (.clean_routing_us_per_packet*100|round/100),
		((.clean_ratio*100|round|tostring) + "%"), ((.clean_ratio_above_routing*100|round|tostring) + "%")] | @tsv' "$json" |
		awk -F'\t' '{printf "%8s %12s %9s %9s %9s %10s %14s\n", $1, $2, $3, $4, $5, $6, $7}'
	echo "(target: fast path ≤ 30 % of userspace; each run:)"
	grep -E '^ +measure_fastpath_test.go:[0-9]+: (fast|userspace|routing) +[0-9]+ pps: ' "$log" | sed -E 's/^ +measure_fastpath_test.go:[0-9]+: /  /' || true
}

if [ "$FASTPATH" != only ]; then
	compare_proxies
fi
if [ "$FASTPATH" != 0 ]; then
	stop_all # the proxies above would add their idle CPU to the whole machine's
	fastpath_columns
fi

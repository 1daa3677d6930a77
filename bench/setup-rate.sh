#!/usr/bin/env bash
# Call setup rate, rtpkit against rtpengine in one run: offer+answer+delete
# cycles per second and p50/p99 per request, with 1 and 8 clients, the two
# proxies measured alternately ROUNDS times. Needs rtpengine-daemon
# (Debian) for the comparison; without it only rtpkit is measured.
#
#   bench/setup-rate.sh [DURATION] [ROUNDS]      (defaults: 5s 3)
#
# With perf installed (Debian linux-perf) it also prints each process's system
# calls and context switches per cycle (PERF=0: not).
#
# rtpengine runs as its best operators run it, twice, both logging to
# stderr (--log-stderr, captured to a file; without a log sink every line
# costs it a failed syslog connection): "rtpengine-l6" at its default log
# level and "rtpengine-l4" with --log-level=4:
#   --config-file=none --table=-1 --foreground --interface=127.0.0.1
#   --listen-ng=127.0.0.1:PORT --delete-delay=0 --log-stderr [--log-level=4]
# The faster of the two, per client count, is the reference ("rtpengine
# at its best"). rtpkit runs with its production defaults (log level info)
# except --delete-delay=0. RTPENGINE_EXTRA_ARGS, when set, starts a third
# rtpengine with the same arguments plus those, measured as "rtpengine+".
#
# REDIS=1 persists calls in Redis too: a redis-server on a free loopback
# port, rtpkit with --redis=…/1 (rtpkit-base …/3) and each rtpengine with
# a database of its own (a write per call change on both sides).
#
# A/B of two rtpkit builds or settings in one run: BASE_BIN (a directory
# holding another build's binaries, e.g. a copy of bin/ made at an earlier
# commit) and/or BASE_ENV (environment for it, e.g. "GOMAXPROCS=2") start
# a second node, measured alternately with the first as "rtpkit-base".
# RTPKIT_ENV is environment for the first node.
#
# HOLD (e.g. HOLD=200ms) keeps each call that long before its delete
# (rtpctl bench setup --hold): the default deletes it right after the
# answer, so that a daemon a few milliseconds behind sees a call's records
# only once it has ended; with a hold every call is followed, handed to
# rtp-fwd and installed as a real one would be.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5s}
ROUNDS=${2:-3}
make -s build
BIN=$PWD/bin
TMP=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}" $PERFPIDS; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# REDIS=1: one redis-server for both proxies.
REDIS_ADDR="" REDIS_DB=4
if [ "${REDIS:-0}" = 1 ]; then
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
    --notify-keyspace-events Khgx >"$TMP/redis.log" 2>&1 &
  pids+=($!)
  for i in $(seq 1 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  REDIS_ADDR=127.0.0.1:$rport
  echo "calls persisted in Redis too ($REDIS_ADDR: rtpkit db 1, rtpkit-base 3, rtpengines 4 on)"
fi

start_rtpkit() { # name bindir env ports [redis-db]: starts a node, its ng address in NG_<name>
  local ng
  ng=127.0.0.1:$(free_port)
  # Each node has a port range of its own, and neither is rtpengine's
  # default 30000-40000: on one address, a node's port stock would take
  # ports the other proxy then finds in use.
  # shellcheck disable=SC2086 # the environment list is split on purpose
  ${3:+env $3} "$2/rtpctl" up --nats-listen=127.0.0.1:0 --state-dir="$TMP/$1" --interface=127.0.0.1 \
    --port-min="${4%-*}" --port-max="${4#*-}" \
    --listen-ng="$ng" --delete-delay=0 ${REDIS_ADDR:+--redis=$REDIS_ADDR/${5:-1}} >"$TMP/$1.out" 2>"$TMP/$1.err" &
  pids+=($!)
  printf -v "NG_${1//-/_}" %s "$ng"
}
start_rtpkit rtpkit "$BIN" "${RTPKIT_ENV:-}" 40000-50000
RTPKIT_NG=$NG_rtpkit
BASE_BIN=${BASE_BIN:-}
BASE_ENV=${BASE_ENV:-}
BASE_NG=""
if [ -n "$BASE_BIN$BASE_ENV" ]; then
  start_rtpkit rtpkit-base "${BASE_BIN:-$BIN}" "$BASE_ENV" 50000-60000 3
  BASE_NG=$NG_rtpkit_base
  echo "rtpkit-base = ${BASE_BIN:-this build}${BASE_ENV:+ with $BASE_ENV}"
fi

declare -A ENGINE_NG ENGINE_PID
ENGINES=()
start_rtpengine() { # name extra-args...
  local name=$1 ng
  shift
  ng=127.0.0.1:$(free_port)
  rtpengine --config-file=none --table=-1 --foreground --interface=127.0.0.1 \
    --listen-ng="$ng" --delete-delay=0 --log-stderr ${REDIS_ADDR:+--redis=$REDIS_ADDR/$REDIS_DB} "$@" >"$TMP/$name.log" 2>&1 &
  pids+=($!)
  REDIS_DB=$((REDIS_DB + 1))
  ENGINE_NG[$name]=$ng
  ENGINE_PID[$name]=$!
  ENGINES+=("$name")
}
RTPENGINE_EXTRA_ARGS=${RTPENGINE_EXTRA_ARGS:-}
if command -v rtpengine >/dev/null; then
  start_rtpengine rtpengine-l6
  start_rtpengine rtpengine-l4 --log-level=4
  if [ -n "$RTPENGINE_EXTRA_ARGS" ]; then
    # shellcheck disable=SC2086 # the extra arguments are split on purpose
    start_rtpengine rtpengine+ $RTPENGINE_EXTRA_ARGS
    echo "rtpengine+ = rtpengine --log-stderr with extra arguments: $RTPENGINE_EXTRA_ARGS"
  fi
else
  echo "rtpengine not installed (apt-get install rtpengine-daemon): measuring rtpkit only" >&2
fi

for node in rtpkit ${BASE_NG:+rtpkit-base}; do
  for i in $(seq 1 50); do grep -q '^Stop with' "$TMP/$node.out" && break; sleep 0.2; done
done
sleep 1

# CPU per cycle of each process of a target (utime+stime from /proc, in
# clock ticks), printed after each run.
declare -A procs
upid() { # node: pid of its rtpctl up (the first line of its banner)
  grep -o "rtpctl up, pid [0-9]*" "$TMP/$1.out" | awk '{print $NF}'
}
for node in rtpkit ${BASE_NG:+rtpkit-base}; do
  procs[$node]=""
  for name in portd rtp-fwd ng-ctl redis-sync; do
    pid=$(grep -o "$name *running, pid [0-9]*" "$TMP/$node.out" | awk '{print $NF}')
    if [ -n "$pid" ]; then procs[$node]+="$name=$pid "; fi
  done
  procs[$node]+="bus=$(upid "$node")" # rtpctl up hosts the embedded bus
done
for e in "${ENGINES[@]}"; do procs[$e]="rtpengine=${ENGINE_PID[$e]}"; done
ticks() { for np in $1; do awk '{printf "%s ", $14+$15}' "/proc/${np#*=}/stat" 2>/dev/null || printf "0 "; done; }
HZ=$(getconf CLK_TCK)

# System calls and context switches per cycle of each process, counted by
# perf (Debian linux-perf) when it is there and allowed; PERF=0 turns it off.
PERF=${PERF:-auto}
if [ "$PERF" = auto ]; then
  PERF=0
  if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter,context-switches -x, -o /dev/null -- true 2>/dev/null; then PERF=1; fi
fi
PERFPIDS=""
perf_start() { # procs: starts one perf stat per process, their pids in PERFPIDS
  PERFPIDS=""
  [ "$PERF" = 1 ] || return 0
  for np in $1; do
    perf stat -e raw_syscalls:sys_enter,context-switches -x, -o "$TMP/perf.${np%=*}" -p "${np#*=}" >/dev/null 2>&1 &
    PERFPIDS+="$! "
  done
  sleep 0.2 # perf attaches
}
perf_report() { # procs cycles: stops the perf stats of perf_start, prints their counts
  [ "$PERF" = 1 ] && [ -n "$PERFPIDS" ] || return 0
  # shellcheck disable=SC2086 # a list of pids
  kill -INT $PERFPIDS 2>/dev/null || true
  # shellcheck disable=SC2086
  wait $PERFPIDS 2>/dev/null || true
  PERFPIDS=""
  local line="           system calls / context switches per cycle:"
  for np in $1; do
    line+=$(awk -F, -v n="${np%=*}" -v c="$2" '/sys_enter/{sc=$1} /context-switches/{cs=$1} END{if (c > 0) printf " %s %.1f/%.1f,", n, sc/c, cs/c}' "$TMP/perf.${np%=*}")
  done
  echo "${line%,}"
}

declare -A best
run() { # name addr clients
  local out before after cps cycles
  perf_start "${procs[$1]:-}"
  before=$(ticks "${procs[$1]:-}")
  out=$("$BIN/rtpctl" bench setup --ng "$2" --clients "$3" --duration "$DUR" --hold "${HOLD:-0}" --label "$1" --json)
  after=$(ticks "${procs[$1]:-}")
  read -r cps cycles < <(python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["cycles_per_second"]), round(r["cycles_per_second"]*r["seconds"]))' <<<"$out")
  python3 - "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
l = r["latency_us"]
print(f'{r["target"]:<10} clients {r["clients"]:<2} cycles/s {r["cycles_per_second"]:7.0f}  errors {r["errors"]:<4}'
      f'  offer {l["offer"]["p50"]:5.0f}/{l["offer"]["p99"]:6.0f} µs  answer {l["answer"]["p50"]:5.0f}/{l["answer"]["p99"]:6.0f}'
      f'  delete {l["delete"]["p50"]:5.0f}/{l["delete"]["p99"]:6.0f}  (p50/p99)')
if r["errors"]:
    print(f'           first error: {r.get("first_error", "")}')
PY
  if [ -n "${procs[$1]:-}" ]; then
    python3 - "$out" "${procs[$1]}" "$before" "$after" "$HZ" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
names = [np.split("=")[0] for np in sys.argv[2].split()]
b, a, hz = sys.argv[3].split(), sys.argv[4].split(), int(sys.argv[5])
n = r["cycles_per_second"] * r["seconds"]
if n > 0:
    parts = [f"{nm} {(float(y) - float(x)) * 1e6 / hz / n:.0f}" for nm, x, y in zip(names, b, a)]
    print("           CPU per cycle (µs): " + ", ".join(parts))
PY
  fi
  perf_report "${procs[$1]:-}" "$cycles"
  local key="$1/$3"
  if [ -z "${best[$key]:-}" ] || [ "$cps" -gt "${best[$key]}" ]; then best[$key]=$cps; fi
}

for round in $(seq 1 "$ROUNDS"); do
  for clients in 1 8; do
    run rtpkit "$RTPKIT_NG" "$clients"
    if [ -n "$BASE_NG" ]; then run rtpkit-base "$BASE_NG" "$clients"; fi
    for e in "${ENGINES[@]}"; do run "$e" "${ENGINE_NG[$e]}" "$clients"; done
  done
done

echo
echo "best of $ROUNDS rounds (cycles/s):"
for clients in 1 8; do
  k=${best[rtpkit/$clients]}
  if [ ${#ENGINES[@]} -gt 0 ]; then
    l6=${best[rtpengine-l6/$clients]} l4=${best[rtpengine-l4/$clients]}
    e=$(( l6 > l4 ? l6 : l4 ))
    python3 -c "print(f'  {$clients} client(s): rtpkit $k, rtpengine at its best $e (log level 6: $l6, 4: $l4), ratio rtpkit/rtpengine {$k/$e:.2f}')"
  else
    echo "  $clients client(s): rtpkit $k"
  fi
  if [ -n "$BASE_NG" ]; then
    b=${best[rtpkit-base/$clients]}
    python3 -c "print(f'  {$clients} client(s): rtpkit $k, rtpkit-base $b, ratio rtpkit/rtpkit-base {$k/$b:.2f}')"
  fi
  if [ -n "${ENGINE_NG[rtpengine+]:-}" ]; then
    x=${best[rtpengine+/$clients]}
    python3 -c "print(f'  {$clients} client(s): rtpkit $k, rtpengine+ $x ($RTPENGINE_EXTRA_ARGS), ratio rtpkit/rtpengine+ {$k/$x:.2f}')"
  fi
done

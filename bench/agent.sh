#!/usr/bin/env bash
# dualstack-agent at cluster scale: a test API server serving NODES realistic Node objects
# (labels, conditions, 30 images: ~6 KB of JSON each) and one agent, both in a node network
# namespace of this run (no route out of the machine; the other nodes' addresses are on a veth
# whose far end sits in a second namespace of this run). Per cluster size (SIZES, default
# "50 5000"):
#   - initial sync: from the agent's start to all 2 x NODES routes in the kernel;
#   - one Node change to its route: p50/p99 over CHANGES (default 100) InternalIP changes, one
#     at a time, while all Nodes exist; the server's own share of each (its control answer);
#   - the agent's CPU time per change and its peak RSS.
# Targets: initial sync <= 2 s at 5,000 Nodes (10,000 routes); change p99 <= 50 ms; CPU per
# change at the largest size within 1.5x of the smallest; peak RSS <= 25 MB.
#   sudo bench/agent.sh                 (root: network namespaces)
#   SIZES="5000" CHANGES=200 sudo bench/agent.sh
# Knobs: DUALSTACK_BIN (build/bin), SIZES, CHANGES, BENCH_STRICT=1 (exit 1 when a target fails).
# Needs bash, iproute2, python3 and openssl.
set -u -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DUALSTACK_BIN=${DUALSTACK_BIN:-$ROOT/build/bin}
SIZES=${SIZES:-50 5000}
CHANGES=${CHANGES:-100}
PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=python3

log() { printf '[agent bench] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

[[ $EUID -eq 0 ]] || die "must run as root (network namespaces): sudo $0"
[[ -x $DUALSTACK_BIN/dualstack-agent ]] || die "no $DUALSTACK_BIN/dualstack-agent: build first"
for t in ip openssl "$PYTHON"; do command -v "$t" >/dev/null || die "missing tool: $t"; done

PREFIX="dsbench-$$"
NODE="$PREFIX-node"
PEER="$PREFIX-peer"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dsbench-agent-$$.XXXXXX") || die "mktemp failed"
INNER_PID=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n $INNER_PID ]]; then
    kill "$INNER_PID" 2>/dev/null
    wait "$INNER_PID" 2>/dev/null
  fi
  ip netns del "$NODE" 2>/dev/null
  ip netns del "$PEER" 2>/dev/null
  rm -rf -- "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
results=()
for n in $SIZES; do
  # A fresh node namespace per size: an empty routing table, no masquerade table.
  ip netns del "$NODE" 2>/dev/null
  ip netns del "$PEER" 2>/dev/null
  ip netns add "$NODE" && ip netns add "$PEER" || die "ip netns add failed"
  ip -n "$NODE" link set lo up
  ip -n "$NODE" link add eth0 type veth peer name eth0 netns "$PEER" || die "veth failed"
  ip -n "$NODE" addr add 172.16.200.1/16 dev eth0
  ip -n "$NODE" -6 addr add fd00:172:16::ffff/64 dev eth0 nodad
  ip -n "$PEER" link set eth0 up
  ip -n "$NODE" link set eth0 up
  log "$n Nodes: measuring (load $(cut -d' ' -f1 /proc/loadavg))"
  ip netns exec "$NODE" "$PYTHON" "$ROOT/bench/agent.py" run --nodes "$n" --changes "$CHANGES" \
    --bin "$DUALSTACK_BIN" --work "$WORK" --network "bench$$" > "$WORK/result-$n.json" &
  INNER_PID=$!
  wait "$INNER_PID" || die "the $n-Node run failed"
  INNER_PID=
  results+=("$(cat "$WORK/result-$n.json")")
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

printf '%s\n' "${results[@]}" | "$PYTHON" "$ROOT/bench/agent.py" report --load0 "$LOAD0" \
  --load1 "$LOAD1" --changes "$CHANGES"
rc=$?
if ((rc == 3)); then
  [[ ${BENCH_STRICT:-0} == 1 ]] && exit 1
  exit 0
fi
exit "$rc"

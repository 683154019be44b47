#!/usr/bin/env bash
# dualstack-ipam ADD latency by node source: static podCIDRs in the config, the Kubernetes API
# with a warm cache, and the Kubernetes API read at every ADD (cold: cacheTTL 0, so each ADD loads
# libcurl, does a TLS handshake and a GET). The API server is tests/k8s/apiserver.py with real TLS
# on 127.0.0.1: a Python stand-in, so "cold" is our client's cost plus a slowish server.
#   bench/k8s.sh       (no root needed: the IPAM plugin alone touches no network namespace)
# Knobs (env): N (ADDs per variant, 200), ROUNDS (the variants take turns, 4), DUALSTACK_BIN,
# BENCH_STRICT=1 (exit 1 when the target fails). Target: warm-cache ADD <= 1.1x static ADD
# (medians). Needs bash >= 5, openssl, python3.
set -u -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DUALSTACK_BIN=${DUALSTACK_BIN:-$ROOT/build/bin}
N=${N:-200}
ROUNDS=${ROUNDS:-4}
PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=python3

log() { printf '[k8s bench] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

((BASH_VERSINFO[0] >= 5)) || die "bash >= 5 needed (EPOCHREALTIME)"
[[ -x $DUALSTACK_BIN/dualstack-ipam ]] || die "no $DUALSTACK_BIN/dualstack-ipam: build first"
((N > 0 && ROUNDS > 0)) || die "N and ROUNDS must be positive"
for t in openssl "$PYTHON" sort awk mkfifo; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done

WORK=$(mktemp -d "/tmp/dsbench-k8s-$$.XXXXXX") || die "mktemp failed"
SERVER_PID=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf -- "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$WORK" || die "cd $WORK"

# --- a CA, a server certificate for 127.0.0.1, the API server, a kubeconfig ---
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
echo "subjectAltName=IP:127.0.0.1" >server.ext
{
  openssl req -x509 "${ec[@]}" -days 1 -subj /CN=bench-ca -keyout ca.key -out ca.crt &&
    openssl req "${ec[@]}" -subj /CN=kube-apiserver -keyout server.key -out server.csr &&
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
      -extfile server.ext -out server.crt
} >openssl.log 2>&1 || die "openssl failed: $(cat openssl.log)"

mkdir -p state/nodes
TOKEN="bench-$RANDOM$RANDOM$RANDOM"
echo "$TOKEN allow system:serviceaccount:kube-system:dualstack-cni" >state/tokens
printf '%s\n' \
  '{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "bench-node"},' \
  ' "spec": {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16", "fd00:10:244::/64"]},' \
  ' "status": {"addresses": [{"type": "InternalIP", "address": "192.168.10.5"},' \
  '   {"type": "InternalIP", "address": "fd00:192:168:10::5"},' \
  '   {"type": "Hostname", "address": "bench-node"}]}}' >state/nodes/bench-node.json

# The server exits when its stdin (this fifo, held open by us on fd 8) closes.
mkfifo stdin.fifo port.fifo
"$PYTHON" "$ROOT/tests/k8s/apiserver.py" --cert server.crt --key server.key --state state \
  <stdin.fifo >port.fifo 2>server.log &
SERVER_PID=$!
exec 8>stdin.fifo
read -r -t 15 PORT <port.fifo || die "the API server did not start: $(cat server.log)"

printf '%s\n' \
  'apiVersion: v1' 'kind: Config' 'current-context: bench' \
  'contexts: [{name: bench, context: {cluster: bench, user: bench}}]' \
  "clusters: [{name: bench, cluster: {server: \"https://127.0.0.1:$PORT\", certificate-authority: ca.crt}}]" \
  "users: [{name: bench, user: {token: \"$TOKEN\"}}]" >kubeconfig
chmod 600 kubeconfig

# conf <variant>: the network config of that variant.
conf() {
  local node
  case $1 in
  static)
    node='{"podCIDRs":["10.244.0.0/16","fd00:10:244::/64"],"addresses":[{"type":"InternalIP","address":"192.168.10.5"},{"type":"InternalIP","address":"fd00:192:168:10::5"}]}'
    ;;
  warm) node="{\"kubeconfig\":\"$WORK/kubeconfig\",\"name\":\"bench-node\",\"cacheTTL\":\"1h\"}" ;;
  cold) node="{\"kubeconfig\":\"$WORK/kubeconfig\",\"name\":\"bench-node\",\"cacheTTL\":0}" ;;
  esac
  printf '{"cniVersion":"1.0.0","name":"bench-%s","type":"dualstack","ipam":{"type":"dualstack-ipam","dataDir":"%s/data-%s","node":%s}}\n' \
    "$1" "$WORK" "$1" "$node"
}

VARIANTS=(static warm cold)
for v in "${VARIANTS[@]}"; do conf "$v" >"cfg-$v.json"; done

# call <variant> <command> <id>: one plugin call; stdout to out.<variant>, stderr to err.<variant>
call() {
  CNI_COMMAND=$2 CNI_CONTAINERID="bench-$1-$3" CNI_NETNS=/var/run/netns/bench CNI_IFNAME=eth0 \
    CNI_PATH="$DUALSTACK_BIN" "$DUALSTACK_BIN/dualstack-ipam" <"cfg-$1.json" >"out.$1" 2>>"err.$1"
}

# Fills the warm variant's cache, and the page cache for every variant.
for v in "${VARIANTS[@]}"; do
  call "$v" ADD warmup || die "$v ADD failed: $(cat "out.$v" "err.$v")"
  call "$v" DEL warmup
done
log "API server on 127.0.0.1:$PORT; $N ADDs per variant in $ROUNDS rounds"

declare -A FAILS
per_round=$(((N + ROUNDS - 1) / ROUNDS))
for ((r = 0; r < ROUNDS; r++)); do
  for v in "${VARIANTS[@]}"; do
    for ((i = r * per_round; i < (r + 1) * per_round && i < N; i++)); do
      t0=$EPOCHREALTIME
      if call "$v" ADD "$i"; then
        t1=$EPOCHREALTIME
        echo $((${t1/./} - ${t0/./})) >>"lat.$v"
      else
        FAILS[$v]=$((${FAILS[$v]:-0} + 1))
      fi
      call "$v" DEL "$i" # untimed: the store stays at one allocation
    done
  done
done

# pct <file> <fraction>: a percentile of microsecond samples, in ms
pct() {
  sort -n "$1" | awk -v p="$2" '{ a[NR] = $1 }
    END { if (NR) { i = int(NR * p + 0.5); if (i < 1) i = 1; printf "%.2f", a[i] / 1000 } }'
}

printf '\n| node source | ADD p50 (ms) | ADD p90 (ms) | p50 vs static | failed |\n'
printf '|---|---|---|---|---|\n'
base=$(pct lat.static 0.5)
declare -A P50
for v in "${VARIANTS[@]}"; do
  P50[$v]=$(pct "lat.$v" 0.5)
  case $v in
  static) label="static \`podCIDRs\`" ;;
  warm) label='kubeconfig, warm cache' ;;
  cold) label='kubeconfig, API read at every ADD' ;;
  esac
  printf '| %s | %s | %s | %s | %s |\n' "$label" "${P50[$v]}" "$(pct "lat.$v" 0.9)" \
    "$(awk -v a="${P50[$v]}" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')" "${FAILS[$v]:-0}"
done
echo
ratio=$(awk -v a="${P50[warm]}" -v b="$base" 'BEGIN { printf "%.3f", a / b }')
status=0
if awk -v r="$ratio" 'BEGIN { exit !(r <= 1.1) }'; then
  echo "PASS warm-cache ADD is ${ratio}x static (target <= 1.1x)"
else
  echo "FAIL warm-cache ADD is ${ratio}x static (target <= 1.1x)"
  [[ ${BENCH_STRICT:-0} == 1 ]] && status=1
fi
if grep -q -- "$TOKEN" out.* err.* 2>/dev/null; then
  echo "FAIL the token appeared in the plugin's output"
  status=1
fi
for v in "${VARIANTS[@]}"; do
  if ((${FAILS[$v]:-0} > 0)); then
    log "$v: ${FAILS[$v]} ADDs failed; first errors:"
    head -5 "err.$v" >&2
    status=2
  fi
done
exit "$status"

#!/usr/bin/env bash
# A three-node dual-stack cluster made of network namespaces on this machine, from nothing:
# an underlay bridge (192.168.10.0/24, fd00:192:168:10::/64, no route out of the machine), the
# test API server serving three Node objects (podCIDRs 10.244.N.0/24 and fd00:10:244:N::/64),
# and on each node what the DaemonSet does: dualstack-install --once, then dualstack-agent.
# Two pods per node are attached by the installed plugin; then every pod pings every pod on the
# other nodes on both families, and each node's routes are shown. docs/cluster.md walks through it.
#
#   scripts/cluster-demo.sh [--no-build] [--keep]   build, set up, show, remove everything
#   scripts/cluster-demo.sh --down                  remove a cluster left by --keep
#
# With --keep the cluster stays up (its namespaces are dscl-*; its state in
# /run/dualstack-cluster-demo) so you can look around, e.g.
#   ip -n dscl-n1 route show proto 77           # node 1's routes to the others' podCIDRs
#   ip netns exec dscl-n1 dualstack-agent status   (build/bin on PATH)
#   ip netns exec dscl-n1p1 ping -c1 -W1 fd00:10:244:2::2
# and remove it with --down. Needs root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=1 keep=0 down=0
for arg in "$@"; do
  case $arg in
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    --down) down=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
    *) echo "cluster-demo.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "cluster-demo.sh: needs root (it creates network namespaces)" >&2; exit 1; }

export CL_REPO="$repo" CL_BIN="${DUALSTACK_BIN_DIR:-$repo/build/bin}" CL_PREFIX=dscl
export CL_DIR=/run/dualstack-cluster-demo CL_PROTO=77 CL_RECONCILE=10s
# shellcheck source=scripts/lib/cluster.bash
source "$repo/scripts/lib/cluster.bash"

if ((down)); then
  [[ -d "$CL_DIR" ]] || ip netns list | grep -q "^$CL_PREFIX-" || { echo "no demo cluster is up"; exit 0; }
  cl_down
  echo "demo cluster removed"
  exit 0
fi
if [[ -d "$CL_DIR" ]] || ip netns list | grep -q "^$CL_PREFIX-"; then
  echo "cluster-demo.sh: a demo cluster is up already: remove it with --down" >&2
  exit 1
fi

if ((build)); then
  "$repo/scripts/setup.sh" # also python3-yaml, jq, iproute2
fi
for b in dualstack dualstack-ipam dualstack-install dualstack-agent; do
  [[ -x "$CL_BIN/$b" ]] || { echo "cluster-demo.sh: $CL_BIN/$b is not built" >&2; exit 1; }
done

trap '((keep)) && [[ ${ok:-0} == 1 ]] || cl_down' EXIT
mkdir -p "$CL_DIR"
echo "== underlay: bridge br0 in namespace $CL_PREFIX-ul, 192.168.10.0/24 and fd00:192:168:10::/64"
cl_underlay_up
echo "== API server in $CL_PREFIX-api at https://$CL_API_V4:$CL_API_PORT"
cl_api_up
for i in 1 2 3; do
  echo "== node$i ($CL_PREFIX-n$i): $(cl_node_v4 "$i"), $(cl_node_v6 "$i"); podCIDRs $(cl_pod_cidr4 "$i"), $(cl_pod_cidr6 "$i")"
  cl_node_up "$i"
done
took=$(cl_wait 30 "the agents' routes" cl_converged 1 2 3)
echo "== the agents routed every other node's podCIDRs after ${took}s:"
for i in 1 2 3; do
  ip -n "$(cl_node_ns "$i")" route show proto "$CL_PROTO" | sed "s/^/  node$i: /"
  ip -n "$(cl_node_ns "$i")" -6 route show proto "$CL_PROTO" | sed "s/^/  node$i: /"
done
echo "== two pods per node (pod 2 with ipMasq)"
for i in 1 2 3; do
  cl_pod_up "$i" 1 false
  cl_pod_up "$i" 2 true
  for j in 1 2; do
    echo "  node$i pod$j ($(cl_node_ns "$i")p$j): $(cl_pod_ip "$i" "$j" 4) $(cl_pod_ip "$i" "$j" 6)"
  done
done
echo "== pod to pod across nodes, both families (one ping each; the listener reports who it saw)"
failed=0
for i in 1 2 3; do for j in 1 2; do for k in 1 2 3; do
  [[ $k == "$i" ]] && continue
  for f in 4 6; do
    src=$(cl_pod_ip "$i" "$j" "$f") dst=$(cl_pod_ip "$k" 1 "$f")
    if ip netns exec "$(cl_node_ns "$i")p$j" ping -c1 -W1 "$dst" >/dev/null 2>&1; then
      seen=$(cl_whoami "$(cl_node_ns "$i")p$j" "$dst")
      printf '  ok    node%s pod%s %-22s -> node%s pod1 %-22s seen as %s\n' "$i" "$j" "$src" "$k" "$dst" "$seen"
    else
      printf '  FAIL  node%s pod%s %-22s -> node%s pod1 %s\n' "$i" "$j" "$src" "$k" "$dst"
      failed=1
    fi
  done
done; done; done
ok=1
if ((keep)); then
  echo "== the cluster stays up: namespaces $CL_PREFIX-*, state in $CL_DIR; remove it with: $0 --down"
else
  echo "== removing everything"
fi
exit "$failed"

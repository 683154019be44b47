#!/usr/bin/env bash
# The dualstack-cni demo: builds the plugins, then in an isolated "node" network namespace (no
# route out of this machine) attaches two "pods" with the default conflist, prints their pod IPs
# in node order, pings pod to pod and node to pod on IPv4 and IPv6, detaches them, shows the
# address store empty, and removes everything it created.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "${1:-}" == "--no-build" ]] || scripts/setup.sh
[[ $(id -u) -eq 0 ]] || { echo "demo: needs root (it creates network namespaces)" >&2; exit 1; }

conflist=${CONFLIST:-conf/10-dualstack.conflist}
bin="${DUALSTACK_BIN_DIR:-$PWD/build/bin}"
prefix="dsdemo-$$"
node="$prefix-node"
work=$(mktemp -d "/tmp/$prefix.XXXXXX")
pods=()

cleanup() {
  set +e
  for p in "${pods[@]}"; do ip netns del "$p" 2>/dev/null; done
  ip netns del "$node" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The plugin's config from the conflist, as a runtime builds it: the list's name and cniVersion,
# our data directory instead of /var/lib/cni/networks.
plugin_conf() {
  jq --arg dir "$work/store" '.plugins[0] + {cniVersion, name}
      | .ipam.dataDir = $dir' "$conflist"
}
network=$(jq -r .name "$conflist")

cni() { # cni COMMAND POD [STDIN]
  local command=$1 pod=$2
  CNI_COMMAND=$command CNI_CONTAINERID="$pod" CNI_NETNS="/run/netns/$pod" CNI_IFNAME=eth0 \
    CNI_PATH="$bin:/usr/lib/cni" ip netns exec "$node" "$bin/dualstack"
}

ip netns add "$node"
ip -n "$node" link set lo up
echo "node namespace $node (isolated: no route out of this machine)"

declare -A v4 v6
for i in 1 2; do
  pod="$prefix-pod$i"
  ip netns add "$pod"
  pods+=("$pod")
  result=$(plugin_conf | cni ADD "$pod")
  echo "pod$i podIPs (node order): $(jq -r '[.ips[].address] | join("  ")' <<<"$result")"
  v4[$i]=$(jq -r '.ips[].address | select(contains(".")) | split("/")[0]' <<<"$result")
  v6[$i]=$(jq -r '.ips[].address | select(contains(":")) | split("/")[0]' <<<"$result")
done

ping_ok() { # ping_ok LABEL NETNS ADDRESS (no address: that family is not configured)
  [[ -n "$3" ]] || return 0
  if ip netns exec "$2" ping -c1 -W1 "$3" >/dev/null 2>&1; then
    echo "  ok    $1 -> $3"
  else
    echo "  FAIL  $1 -> $3"; failed=1
  fi
}
failed=0
echo "pings (one packet each, right after ADD):"
ping_ok "pod1" "$prefix-pod1" "${v4[2]}"
ping_ok "pod1" "$prefix-pod1" "${v6[2]}"
ping_ok "pod2" "$prefix-pod2" "${v4[1]}"
ping_ok "pod2" "$prefix-pod2" "${v6[1]}"
ping_ok "node" "$node" "${v4[1]}"
ping_ok "node" "$node" "${v6[1]}"

for pod in "${pods[@]}"; do plugin_conf | cni DEL "$pod"; done
echo "after DEL, allocations left in the store: $(find "$work/store/$network" -maxdepth 1 -type f \
  -name '*[.:]*' ! -name 'last_reserved_ip.*' 2>/dev/null | wc -l)"
echo "links left in the node namespace: $(ip -n "$node" -o link show type veth | wc -l)"
[[ $failed -eq 0 ]] && echo "demo: all pings succeeded" || { echo "demo: some pings failed" >&2; exit 1; }

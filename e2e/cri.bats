#!/usr/bin/env bats
# dualstack under containerd's CRI plugin (Debian 12's containerd 1.6), driven over gRPC the way
# the kubelet drives it: RunPodSandbox, PodSandboxStatus (network.ip + additional_ips, which the
# kubelet turns into pod.status.podIPs), StopPodSandbox, RemovePodSandbox. Each test runs a
# private containerd (see e2e/cri/helpers.bash) with a pause image built from busybox-static.
#
# What the tests pin down: containerd picks the pod's primary IP by its `ip_pref` setting, not
# by the order of the plugin's result: by default IPv4 comes first whatever the node's order,
# and only `ip_pref = "cni"` keeps the plugin's (node-family) order. containerd 1.6 sends DEL on
# StopPodSandbox and again, without a netns or a cached result, on RemovePodSandbox.

bats_require_minimum_version 1.5.0
load helpers
load cri/helpers

setup_file() {
  export CRI_SKIP
  CRI_SKIP=$(cri_skip_reason)
  [[ -z "$CRI_SKIP" ]] || return 0
  e2e_sweep_stale
  cri_prepare_file
}

setup() {
  [[ -z "$CRI_SKIP" ]] || skip "$CRI_SKIP"
  E2E_NAME=$(e2e_name)
}

teardown() {
  cri_teardown
}

# assert_pod_has POD (what `cri status` prints): the pod's netns has exactly the CRI's
# addresses on eth0, they are the store's allocations, and the node reaches both.
assert_pod_has() {
  local pod=$1 pid ip
  pid=$(jq -r .pid <<<"$pod")
  [[ "$pid" -gt 0 ]] || fail "PodSandboxStatus names no sandbox process: $pod"
  assert_equal "$( (cri_netns_addrs "$pid" 4; cri_netns_addrs "$pid" 6) | sort)" \
    "$(cri_pod_ips "$pod" | sort)"
  assert_equal "$(cri_allocations)" "$(cri_pod_ips "$pod" | sort)"
  for ip in $(cri_pod_ips "$pod"); do
    ip netns exec "$CRI_NODE" ping -c1 -W1 "$ip" >/dev/null ||
      fail "the node does not reach the pod at $ip"
  done
}

# stop_and_remove ID: StopPodSandbox releases the pod's addresses and node veth (one DEL);
# RemovePodSandbox sends a second DEL, without netns and prevResult, which succeeds as well.
stop_and_remove() {
  local id=$1
  assert_equal "$(cri_plugin_log dualstack 'DEL ok' | wc -l)" 0
  # libcni caches the ADD result in containerd's private /var/lib/cni.
  run nsenter --mount="/proc/$CRI_PID/ns/mnt" find /var/lib/cni -name "$CRI_NETWORK-*"
  assert_success
  assert_output --partial "/$CRI_NETWORK-$id-eth0"
  run cri stop "$id"
  assert_success
  assert_equal "$(cri_allocations)" ""
  assert_equal "$(cri_node_veths)" ""
  assert_equal "$(cri_plugin_log dualstack 'DEL ok' | wc -l)" 1

  run cri remove "$id"
  assert_success
  cri_forget "$id"
  assert_equal "$(cri_plugin_log dualstack 'DEL ok' | wc -l)" 2
  assert_equal "$(cri_plugin_log dualstack-ipam 'DEL ok' | wc -l)" 2
  run cri_plugin_log dualstack 'DEL start'
  assert_line --index 0 --partial ", netns $CRI_DIR/state/"
  assert_line --index 1 --regexp 'CNI_ARGS keys [^"]*, no prevResult"$'
  refute_line --index 1 --partial ', netns '
  assert_equal "$(grep -c ' level=error ' "$CRI_DIR/cni.log")" 0
  assert_equal "$(cri_allocations)" ""
  assert_equal "$(cri_node_veths)" ""
  # The cached result is gone too.
  run nsenter --mount="/proc/$CRI_PID/ns/mnt" find /var/lib/cni -name "$CRI_NETWORK-*"
  assert_success
  assert_output ""
  run cri status "$id"
  assert_failure
  assert_output --partial NOT_FOUND
}

@test "cri: default ip_pref on an IPv4-first node: IPv4 primary, IPv6 additional; Stop and Remove release" {
  cri_start "" conf/10-dualstack.conflist
  local id pod
  id=$(cri_run_pod web)
  pod=$(cri status "$id")
  assert_equal "$(jq -r .state <<<"$pod")" SANDBOX_READY
  assert_equal "$(cri_families "$pod")" "4 6"
  assert_regex "$(jq -r .ip <<<"$pod")" '^10\.244\.1\.[0-9]+$'
  assert_regex "$(jq -r '.additional_ips[0]' <<<"$pod")" '^fd00:10:244:1::[0-9a-f]+$'
  # The plugin's own result had the same (node) order.
  run cri_plugin_log dualstack 'ADD ok'
  assert_output --regexp 'ADD ok: 10\.244\.1\.[0-9]+/24 fd00:10:244:1::[0-9a-f]+/64"$'
  assert_pod_has "$pod"
  stop_and_remove "$id"
}

@test "cri: ip_pref = cni on an IPv6-first node keeps the plugin's order: IPv6 primary" {
  cri_start cni conf/20-dualstack-ipv6-primary.conflist
  local id pod
  id=$(cri_run_pod web)
  pod=$(cri status "$id")
  assert_equal "$(jq -r .state <<<"$pod")" SANDBOX_READY
  assert_equal "$(cri_families "$pod")" "6 4"
  assert_regex "$(jq -r .ip <<<"$pod")" '^fd00:10:244:2::[0-9a-f]+$'
  assert_regex "$(jq -r '.additional_ips[0]' <<<"$pod")" '^10\.244\.2\.[0-9]+$'
  assert_pod_has "$pod"
  stop_and_remove "$id"
}

@test "cri: the default ip_pref makes IPv4 primary even when the plugin puts IPv6 first" {
  cri_start "" conf/20-dualstack-ipv6-primary.conflist
  local id pod
  id=$(cri_run_pod web)
  pod=$(cri status "$id")
  # The plugin answered in the node's order, IPv6 first ...
  run cri_plugin_log dualstack 'ADD ok'
  assert_output --regexp 'ADD ok: fd00:10:244:2::[0-9a-f]+/64 10\.244\.2\.[0-9]+/24"$'
  # ... and containerd reordered it: an IPv6-primary cluster needs ip_pref = "cni".
  assert_equal "$(cri_families "$pod")" "4 6"
  assert_pod_has "$pod"
  stop_and_remove "$id"
}

@test "cri: containerd 1.6's ip_pref = ipv6 takes the result's first address, of either family" {
  cri_start ipv6 conf/10-dualstack.conflist
  local version
  version=$(cri_version)
  [[ "$version" == 1.6.* ]] ||
    skip "pinned to containerd 1.6, whose ipv6 mode tests To16() (true for IPv4 too); found $version"
  local id pod
  id=$(cri_run_pod web)
  pod=$(cri status "$id")
  run cri_plugin_log dualstack 'ADD ok'
  assert_output --regexp 'ADD ok: 10\.244\.1\.[0-9]+/24 fd00:10:244:1::[0-9a-f]+/64"$'
  assert_equal "$(cri_families "$pod")" "4 6"
  stop_and_remove "$id"
}

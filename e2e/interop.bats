#!/usr/bin/env bats
# Interoperability with Debian's reference CNI plugins (containernetworking-plugins 1.1.1):
# dualstack with the reference host-local as its IPAM, the reference bridge and ptp with
# dualstack-ipam, and host-local and dualstack-ipam taking turns on one store. Driven through
# libcni (e2e/cnitool), as a runtime would.

bats_require_minimum_version 1.5.0
load helpers

e2e_libcni_hooks

setup() {
  e2e_setup
  e2e_require_ours
  mkdir -p "$E2E_TMP/net" "$E2E_TMP/store"
}

# conflist DIR NAME PLUGIN-JSON...: writes DIR/NAME.conflist (cniVersion 1.0.0, what the
# reference plugins speak) with the IPAM store in the test's temp dir.
conflist() {
  local dir=$1 name=$2
  shift 2
  mkdir -p "$dir"
  printf '%s\n' "$@" | jq -s --arg name "$name" --arg store "$E2E_TMP/store" '
      {cniVersion: "1.0.0", name: $name,
       plugins: map(if has("ipam") then .ipam.dataDir = $store else . end)}' \
    >"$dir/$name.conflist"
}

# add_two_pods NET FAMILY FAMILY: pods 1 and 2 attached to NET, each result holding one address
# of each family in that order; sets the caller's pod1, pod2 and their results r1, r2.
add_two_pods() {
  pod1=$(e2e_pod 1)
  pod2=$(e2e_pod 2)
  e2e_cnitool_add "$1" "$pod1"
  r1=$output
  e2e_cnitool_add "$1" "$pod2"
  r2=$output
  e2e_assert_result "$r1" "$pod1" "$2" "$3"
  e2e_assert_result "$r2" "$pod2" "$2" "$3"
}

# del_two_pods NET: libcni DEL of pods 1 and 2, both succeeding, and no allocation left in NET.
del_two_pods() {
  run e2e_cnitool del "$1" "$pod1"
  assert_success
  run e2e_cnitool del "$1" "$pod2"
  assert_success
  assert_equal "$(e2e_store_allocations "$1")" ""
}

@test "interop: dualstack with the reference host-local as IPAM (IPv6 range first)" {
  e2e_require_ref host-local
  conflist "$E2E_TMP/net" hl '{"type": "dualstack", "ipam": {"type": "host-local",
      "ranges": [[{"subnet": "fd00:10:244:7::/64"}], [{"subnet": "10.244.7.0/24"}]]}}'
  local pod1 pod2 r1 r2 f
  # dualstack keeps the IPAM's order: host-local's is its ranges' order.
  add_two_pods hl 6 4
  assert_equal "$(e2e_result_ips "$r1")" "$(printf '%s\n' fd00:10:244:7::2 10.244.7.2)"
  for f in 4 6; do
    assert_equal "$(e2e_pod_addrs "$pod1" "$f")" "$(e2e_ip_of "$r1" "$f")"
    e2e_ping "$pod1" "$(e2e_ip_of "$r2" "$f")"
    e2e_ping "$pod2" "$(e2e_ip_of "$r1" "$f")"
    e2e_ping "$E2E_NODE" "$(e2e_ip_of "$r2" "$f")"
  done
  run e2e_cnitool check hl "$pod1"
  assert_success
  del_two_pods hl
  assert_equal "$(ip -n "$E2E_NODE" -o link show type veth)" ""
}

@test "interop: the reference bridge with dualstack-ipam (IPv6-primary node)" {
  e2e_require_ref bridge
  conflist "$E2E_TMP/net" br '{"type": "bridge", "bridge": "dsbr0", "isGateway": true,
      "ipam": {"type": "dualstack-ipam", "node": {
        "podCIDRs": ["10.244.8.0/24", "fd00:10:244:8::/64"],
        "addresses": [{"type": "InternalIP", "address": "fd00:192:168:10::8"},
                      {"type": "InternalIP", "address": "192.168.10.8"}]}}}'
  local pod1 pod2 r1 r2 f
  add_two_pods br 6 4
  assert_equal "$(e2e_result_ips "$r1")" "$(printf '%s\n' fd00:10:244:8::2 10.244.8.2)"
  for f in 4 6; do
    assert_equal "$(e2e_pod_addrs "$pod2" "$f")" "$(e2e_ip_of "$r2" "$f")"
    e2e_ping "$pod1" "$(e2e_ip_of "$r2" "$f")"
    # bridge leaves duplicate-address detection on for its own gateway address: a few tries.
    e2e_ping_retry "$E2E_NODE" "$(e2e_ip_of "$r1" "$f")" 3
  done
  run e2e_cnitool check br "$pod1"
  assert_success
  run e2e_cnitool check br "$pod2"
  assert_success
  del_two_pods br
}

@test "interop: the reference ptp with dualstack-ipam" {
  e2e_require_ref ptp
  conflist "$E2E_TMP/net" pt '{"type": "ptp", "ipam": {"type": "dualstack-ipam", "node": {
        "podCIDRs": ["10.244.9.0/24", "fd00:10:244:9::/64"],
        "addresses": [{"type": "InternalIP", "address": "192.168.10.9"}]}}}'
  local pod1 pod2 r1 r2 f
  add_two_pods pt 4 6
  for f in 4 6; do
    assert_equal "$(e2e_pod_addrs "$pod1" "$f")" "$(e2e_ip_of "$r1" "$f")"
    e2e_ping_retry "$pod1" "$(e2e_ip_of "$r2" "$f")" 3
    e2e_ping_retry "$E2E_NODE" "$(e2e_ip_of "$r2" "$f")" 3
  done
  run e2e_cnitool check pt "$pod1"
  assert_success
  del_two_pods pt
}

@test "interop: host-local and dualstack-ipam take turns on one store, never one address twice" {
  e2e_require_ref bridge host-local
  # One network, one store, the same ranges; only ipam.type differs, as when an operator
  # switches a node from host-local to dualstack-ipam (or back).
  local ipam
  for ipam in host-local dualstack-ipam; do
    conflist "$E2E_TMP/net-$ipam" turns "{\"type\": \"bridge\", \"bridge\": \"dsbr0\",
        \"isGateway\": true, \"ipam\": {\"type\": \"$ipam\",
        \"ranges\": [[{\"subnet\": \"10.244.10.0/24\"}], [{\"subnet\": \"fd00:10:244:10::/64\"}]]}}"
  done
  other() { [[ $1 == host-local ]] && echo dualstack-ipam || echo host-local; }

  local i pod r all=() pods=() by=()
  for i in 1 2 3 4 5 6; do
    ((i % 2)) && ipam=host-local || ipam=dualstack-ipam
    pod=$(e2e_pod "$i")
    E2E_NETCONF="$E2E_TMP/net-$ipam" e2e_cnitool_add turns "$pod"
    r=$output
    e2e_assert_result "$r" "$pod" 4 6
    pods+=("$pod")
    by+=("$ipam")
    mapfile -t -O "${#all[@]}" all < <(e2e_result_ips "$r")
    echo "# $pod via $ipam: $(e2e_result_ips "$r" | tr '\n' ' ')" >&3
  done
  assert_equal "$(printf '%s\n' "${all[@]}" | sort | uniq -d)" ""
  assert_equal "${#all[@]}" 12
  assert_equal "$(e2e_store_allocations turns | wc -l)" 12

  # Both write host-local's format: "containerID\r\nifname".
  local a want
  for i in "${!pods[@]}"; do
    for a in "${all[@]:$((2 * i)):2}"; do
      want=$(printf '%s\r\n%s' "${pods[$i]}" eth0)
      assert_equal "$(cat "$E2E_TMP/store/turns/$a")" "$want"
    done
  done

  # The addresses really are distinct on the wire.
  for i in 0 1 2 3 4; do
    e2e_ping "${pods[$i]}" "${all[$((2 * i + 2))]}"
    e2e_ping "${pods[$i]}" "${all[$((2 * i + 3))]}"
  done

  # Each checks and releases what the other allocated.
  for i in "${!pods[@]}"; do
    E2E_NETCONF="$E2E_TMP/net-$(other "${by[$i]}")" run e2e_cnitool check turns "${pods[$i]}"
    assert_success
  done
  for i in "${!pods[@]}"; do
    E2E_NETCONF="$E2E_TMP/net-$(other "${by[$i]}")" run e2e_cnitool del turns "${pods[$i]}"
    assert_success
  done
  assert_equal "$(e2e_store_allocations turns)" ""
}

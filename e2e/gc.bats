#!/usr/bin/env bats
# CNI GC as libcni 1.2 sends it. Debian's libcni (1.1) has no GC yet, so its GCNetworkList is
# replayed by hand: pods attached through libcni (e2e/cnitool, with its result cache), a DEL
# through libcni of every cached attachment that is not valid (with the cached result as
# prevResult), then GC to each plugin of the list with the config libcni 1.2 derives for it: the
# plugin's own keys, the list's name, and the newest of the list's cniVersions it speaks.

bats_require_minimum_version 1.5.0
load helpers

e2e_libcni_hooks

teardown() {
  e2e_teardown
  # The masquerade lock of this test's own network (the plugin never removes lock files).
  rm -f "/run/dualstack-cni/masq-$E2E_NAME-gc.lock"
}

# gc_config NET PLUGIN-INDEX [LIST]: the config libcni 1.2's GCNetworkList sends to one plugin of
# the list: the plugin's object with the list's name and cniVersion injected (1.1.0: the newest
# of the list's cniVersions that libcni 1.2 speaks) and, when LIST (a JSON array) is given, the
# valid attachments under both the spec's key and the older one, as libcni 1.2 writes them.
gc_config() {
  jq -c --argjson i "$2" --argjson list "${3:-null}" '
      .plugins[$i] + {name: .name, cniVersion: "1.1.0"}
      + (if $list == null then {}
         else {"cni.dev/valid-attachments": $list, "cni.dev/attachments": $list} end)' \
    "$E2E_TMP/net/$1.conflist"
}

# gc NET [LIST]: GC to every plugin of the list, in list order, as libcni 1.2 sends it (CNI_COMMAND,
# CNI_PATH and nothing else about an attachment); stops at the first failure.
gc() {
  local net=$1 list=${2:-} n i type
  n=$(jq '.plugins | length' "$E2E_TMP/net/$net.conflist")
  for ((i = 0; i < n; i++)); do
    type=$(jq -r --argjson i "$i" '.plugins[$i].type' "$E2E_TMP/net/$net.conflist")
    gc_config "$net" "$i" "$list" |
      ip netns exec "$E2E_NODE" env -i PATH="$PATH" CNI_COMMAND=GC CNI_PATH="$E2E_CNI_PATH" \
        "$DS_BIN/$type" || return 1
  done
}

# cached_attachments NET: "containerID ifname netns" of every attachment of NET in the result
# cache, as libcni's GetCachedAttachments lists them.
cached_attachments() {
  local f
  for f in "$E2E_TMP/cache/results/$1"-*; do
    [[ -e "$f" ]] || continue
    jq -r --arg net "$1" 'select(.networkName == $net) | "\(.containerId) \(.ifName) \(.netns // "")"' "$f"
  done
}

# The example conflist with ipMasq on, renamed to NET.
masq_network() {
  local net=$1
  e2e_conflist "$E2E_REPO/conf/10-dualstack.conflist" "$E2E_TMP/net" "$net" >/dev/null
  mv "$E2E_TMP/net/10-dualstack.conflist" "$E2E_TMP/net/$net.conflist"
  jq '.plugins[0].ipMasq = true' "$E2E_TMP/net/$net.conflist" >"$E2E_TMP/conflist.tmp"
  mv "$E2E_TMP/conflist.tmp" "$E2E_TMP/net/$net.conflist"
}

masq_table() {
  ip netns exec "$E2E_NODE" nft list tables | grep -F "dualstack_$1" || true
}

@test "gc: libcni 1.2's GCNetworkList without arguments (cnitool gc) leaves nothing behind" {
  local net="$E2E_NAME-gc" pod1 pod2 pod3 cid ifname netns
  masq_network "$net"
  pod1=$(e2e_pod 1)
  pod2=$(e2e_pod 2)
  pod3=$(e2e_pod 3)
  e2e_cnitool_add "$net" "$pod1"
  e2e_cnitool_add "$net" "$pod2"
  e2e_cnitool_add "$net" "$pod3"
  # A runtime that lost part of its cache: pod3 is known to the plugins only.
  rm "$E2E_TMP/cache/results/$net-$pod3-eth0"
  assert_equal "$(e2e_store_allocations "$net" | wc -l)" 6
  assert_equal "$(ip -n "$E2E_NODE" -o link show type veth | wc -l)" 3
  [[ -n "$(masq_table "$net")" ]] || fail "ipMasq made no table"

  # GCNetworkList(ctx, list, nil): no attachment is valid, so every cached one gets a DEL first.
  run cached_attachments "$net"
  assert_equal "${#lines[@]}" 2
  while read -r cid ifname netns; do
    CNI_CONTAINERID=$cid CNI_IFNAME=$ifname e2e_cnitool del "$net" "${netns#/run/netns/}" ||
      fail "DEL of cached attachment $cid failed"
  done < <(cached_attachments "$net")
  assert_equal "$(ip -n "$E2E_NODE" -o link show type veth | wc -l)" 1

  # Then GC without cni.dev/valid-attachments: none is valid.
  run gc_config "$net" 0
  refute_output --partial 'cni.dev/'
  run --separate-stderr gc "$net"
  assert_success
  assert_output ''
  assert_equal "$(ip -n "$E2E_NODE" -o link show type veth)" ""
  assert_equal "$(e2e_store_allocations "$net")" ""
  assert_equal "$(masq_table "$net")" ""
  assert_equal "$(ip -n "$pod3" -o link show type veth)" ""
  assert_equal "$(cached_attachments "$net")" ""
  # And again: nothing left to do is success.
  run --separate-stderr gc "$net"
  assert_success
}

@test "gc: a list naming one live pod releases exactly the other" {
  local net="$E2E_NAME-gc" pod1 pod2 r1 list
  masq_network "$net"
  pod1=$(e2e_pod 1)
  pod2=$(e2e_pod 2)
  e2e_cnitool_add "$net" "$pod1"
  r1=$output
  e2e_cnitool_add "$net" "$pod2"

  # GCNetworkList(ctx, list, {ValidAttachments: [pod1]}) would DEL the cached pod2 first; here the
  # GC alone must do it (a runtime that lost pod2 from its cache).
  list=$(jq -cn --arg id "$pod1" '[{containerID: $id, ifname: "eth0"}]')
  run gc "$net" "$list"
  assert_success
  assert_equal "$(e2e_store_allocations "$net")" \
    "$(printf '%s\n' "$(e2e_ip_of "$r1" 4)" "$(e2e_ip_of "$r1" 6)" | sort)"
  assert_equal "$(ip -n "$E2E_NODE" -o link show type veth | wc -l)" 1
  assert_equal "$(ip -n "$pod2" -o link show type veth)" ""
  assert_equal "$(e2e_pod_addrs "$pod1" 4)" "$(e2e_ip_of "$r1" 4)"
  assert_equal "$(e2e_pod_addrs "$pod1" 6)" "$(e2e_ip_of "$r1" 6)"
  e2e_ping "$E2E_NODE" "$(e2e_ip_of "$r1" 4)"
  e2e_ping "$E2E_NODE" "$(e2e_ip_of "$r1" 6)"
  ip netns exec "$E2E_NODE" nft list table inet "dualstack_$net" |
    grep -F "$(jq -r '.interfaces[0].name' <<<"$r1")" >/dev/null ||
    fail "pod1's masquerade entry is gone"
  run e2e_cnitool check "$net" "$pod1"
  assert_success

  # The runtime's own DELs still work afterwards, for both.
  run e2e_cnitool del "$net" "$pod2"
  assert_success
  run e2e_cnitool del "$net" "$pod1"
  assert_success
  assert_equal "$(ip -n "$E2E_NODE" -o link show type veth)" ""
  assert_equal "$(e2e_store_allocations "$net")" ""
  assert_equal "$(masq_table "$net")" ""
}

@test "gc: a misspelled list is refused and changes nothing" {
  local net="$E2E_NAME-gc" pod1 before list
  masq_network "$net"
  pod1=$(e2e_pod 1)
  e2e_cnitool_add "$net" "$pod1"
  before=$(e2e_store_allocations "$net")
  list=$(jq -cn --arg id "$pod1" '[{containerID: $id, ifname: "eth0"}]')
  gc_config "$net" 0 | jq -c --argjson l "$list" '. + {"cni.dev/valid-attachment": $l}' \
    >"$E2E_TMP/gc.json"
  run --separate-stderr ip netns exec "$E2E_NODE" env -i CNI_COMMAND=GC CNI_PATH="$E2E_CNI_PATH" \
    "$DS_BIN/dualstack" <"$E2E_TMP/gc.json"
  assert_failure
  assert_equal "$(jq -r .code <<<"$output")" 7
  assert_output --partial 'unknown key \"cni.dev/valid-attachment\"'
  assert_equal "$(e2e_store_allocations "$net")" "$before"
  assert_equal "$(ip -n "$E2E_NODE" -o link show type veth | wc -l)" 1
  run e2e_cnitool del "$net" "$pod1"
  assert_success
}

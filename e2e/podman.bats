#!/usr/bin/env bats
# dualstack under a real container runtime: Debian's podman 4.3 with its CNI backend (libcni),
# runc, storage and runtime state in a temp dir, an image imported from busybox-static (no
# registry), and the runtime's host side in an isolated node namespace (nsenter --net; not
# `ip netns exec`, which remounts /sys and hides the cgroup mounts runc needs).
#
# podman calls VERSION, ADD and DEL (stop = DEL, start = ADD, `network reload` = DEL + ADD with
# the old addresses in runtimeConfig.ips); it speaks cniVersion up to 1.0.0.

bats_require_minimum_version 1.5.0
load helpers

IMAGE=localhost/dualstack-e2e-busybox:latest

# pm ARGS...: podman with our configuration, its host side in the node namespace.
pm() {
  nsenter --net="/run/netns/$PM_NODE" podman "$@"
}

# Why every test of this file is skipped, if it is ("skip" in setup_file needs bats >= 1.9).
pm_skip_reason() {
  [[ $(id -u) -eq 0 ]] || { echo "needs root: creates network namespaces"; return; }
  local b
  for b in dualstack dualstack-ipam; do
    [[ -x "$DS_BIN/$b" ]] || { echo "$b is not built in $DS_BIN (run: cmake --build build)"; return; }
  done
  for b in podman runc /bin/busybox; do
    command -v "$b" >/dev/null || { echo "$b is not installed (run: e2e/setup.sh)"; return; }
  done
}

setup_file() {
  export PM_SKIP
  PM_SKIP=$(pm_skip_reason)
  [[ -z "$PM_SKIP" ]] || return 0
  e2e_sweep_stale

  export PM_NAME="dse2e-$BATS_ROOT_PID-podman"
  export PM_NODE="$PM_NAME-node"
  export PM_DIR="$BATS_FILE_TMPDIR/podman"
  export PM_NET4="$PM_NAME-v4" PM_NET6="$PM_NAME-v6" PM_NETPM="$PM_NAME-pm"
  mkdir -p "$PM_DIR"/{net,store,tmp}

  # What podman leaves outside its temp dirs, to remove afterwards only if we created it.
  local pre=()
  [[ -e /var/lib/containers ]] && pre+=(containers)
  [[ -e /var/lib/cni ]] && pre+=(cni)
  [[ -e /var/lib/cni/results ]] && pre+=(cni-results)
  compgen -G '/sys/fs/cgroup/*/libpod_parent' >/dev/null && pre+=(cgroups)
  [[ -e /sys/fs/cgroup/libpod_parent ]] && pre+=(cgroups)
  export PM_PREEXISTING="${pre[*]}"

  cat >"$PM_DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["$DS_BIN", "$REF_BIN"]
network_config_dir = "$PM_DIR/net"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PM_DIR/events.log"
tmp_dir = "$PM_DIR/tmp"
static_dir = "$PM_DIR/storage/libpod"
volume_path = "$PM_DIR/storage/volumes"
lock_type = "file"
EOF
  cat >"$PM_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PM_DIR/storage"
runroot = "$PM_DIR/run"
EOF
  export CONTAINERS_CONF="$PM_DIR/containers.conf"
  export CONTAINERS_STORAGE_CONF="$PM_DIR/storage.conf"

  # Our example conflists, renamed for this run, with the store in the temp dir.
  jq --arg n "$PM_NET4" --arg s "$PM_DIR/store" '.name = $n | .plugins[0].ipam.dataDir = $s' \
    "$E2E_REPO/conf/10-dualstack.conflist" >"$PM_DIR/net/10-$PM_NET4.conflist"
  jq --arg n "$PM_NET6" --arg s "$PM_DIR/store" '.name = $n | .plugins[0].ipam.dataDir = $s' \
    "$E2E_REPO/conf/20-dualstack-ipv6-primary.conflist" >"$PM_DIR/net/20-$PM_NET6.conflist"
  jq --arg n "$PM_NETPM" --arg s "$PM_DIR/store" '.name = $n | .plugins[0].ipam.dataDir = $s' \
    "$E2E_REPO/conf/50-dualstack-portmap.conflist" >"$PM_DIR/net/50-$PM_NETPM.conflist"

  ip netns add "$PM_NODE"
  ip -n "$PM_NODE" link set lo up
  # The node's InternalIPs of the example conflists, on lo: published ports are reached there.
  ip -n "$PM_NODE" addr add 192.168.10.5/32 dev lo
  ip -n "$PM_NODE" addr add fd00:192:168:10::5/128 dev lo

  # The image: busybox-static and its applets, imported from a tarball.
  local rootfs="$PM_DIR/rootfs" a
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/www"
  echo "hello from a container" >"$rootfs/www/index.html"
  cp /bin/busybox "$rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do
    [[ $a == busybox ]] || ln -s busybox "$rootfs/bin/$a"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
  tar -C "$rootfs" -c . | podman import -q - "$IMAGE" >/dev/null
}

teardown_file() {
  if [[ -z "${PM_DIR:-}" ]]; then
    return 0
  fi
  pm rm -a -f -t 0 >/dev/null 2>&1 || true
  podman system reset -f >/dev/null 2>&1 || true
  # Anything podman left mounted under its temp dir (overlay, shm), deepest first.
  local m
  awk -v d="$PM_DIR" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$PM_DIR"
  ip netns del "$PM_NODE" 2>/dev/null || true
  rm -f /var/lib/cni/results/"$PM_NAME"-* 2>/dev/null || true
  [[ " $PM_PREEXISTING " == *" cni-results "* ]] || rmdir /var/lib/cni/results 2>/dev/null || true
  [[ " $PM_PREEXISTING " == *" cni "* ]] || rmdir /var/lib/cni 2>/dev/null || true
  # containers/image keeps a blob-info cache for root at a fixed path.
  [[ " $PM_PREEXISTING " == *" containers "* ]] || rm -rf /var/lib/containers
  if [[ " $PM_PREEXISTING " != *" cgroups "* ]]; then
    find /sys/fs/cgroup -depth -type d -path '*libpod_parent*' -exec rmdir {} + 2>/dev/null || true
  fi
}

setup() {
  [[ -z "$PM_SKIP" ]] || skip "$PM_SKIP"
  E2E_NAME=$(e2e_name)
}

teardown() {
  if [[ -n "${PM_DIR:-}" ]]; then
    pm rm -a -f -t 0 >/dev/null 2>&1 || true
  fi
}

# run_ctr NAME NETWORK: a container that sleeps, on NETWORK.
run_ctr() {
  run --separate-stderr pm run -d --name "$1" --network "$2" "$IMAGE" sleep 300
  [[ $status -eq 0 ]] || fail "podman run $1 on $2 failed: $stderr $output"
}

# inspect_ip CTR NETWORK 4|6: the address podman recorded for CTR.
inspect_ip() {
  local field=IPAddress
  [[ $3 == 6 ]] && field=GlobalIPv6Address
  pm inspect --format "{{(index .NetworkSettings.Networks \"$2\").$field}}" "$1"
}

# ctr_addrs CTR 4|6: global addresses on eth0 inside CTR.
ctr_addrs() {
  pm exec "$1" ip -"$2" -o addr show dev eth0 scope global | awk '{split($4, a, "/"); print a[1]}'
}

# hosts_order CTR: the families of the container's own lines in its /etc/hosts, which podman
# writes in the order of the plugin's result.
hosts_order() {
  pm exec "$1" cat /etc/hosts | awk -v n="$1" '$0 ~ n {print ($1 ~ /:/) ? "6" : "4"}' |
    paste -sd' '
}

# cached_families NETWORK CTR: the families of the result podman keeps in libcni's cache.
cached_families() {
  local id
  id=$(pm inspect --format '{{.Id}}' "$2")
  jq -r '[.result.ips[].address | if contains(":") then "6" else "4" end] | join(" ")' \
    "/var/lib/cni/results/$1-$id-eth0"
}

allocations() {
  local d="$PM_DIR/store/$1"
  [[ -d "$d" ]] || return 0
  find "$d" -maxdepth 1 -type f \( -name '*.*' -o -name '*:*' \) ! -name 'last_reserved_ip.*' \
    -printf '%f\n' | sort
}

@test "podman: two containers get one IPv4 and one IPv6 in node order and reach each other" {
  local c1="$E2E_NAME-c1" c2="$E2E_NAME-c2" f
  run_ctr "$c1" "$PM_NET4"
  run_ctr "$c2" "$PM_NET4"
  for f in 4 6; do
    local a1 a2
    a1=$(inspect_ip "$c1" "$PM_NET4" "$f")
    a2=$(inspect_ip "$c2" "$PM_NET4" "$f")
    [[ -n "$a1" && -n "$a2" && "$a1" != "$a2" ]] || fail "IPv$f: inspect gives '$a1' and '$a2'"
    assert_equal "$(ctr_addrs "$c1" "$f")" "$a1"
    assert_equal "$(ctr_addrs "$c2" "$f")" "$a2"
    run pm exec "$c1" ping -c1 -W1 "$a2"
    assert_success
    run pm exec "$c2" ping -c1 -W1 "$a1"
    assert_success
  done
  # The node's first InternalIP is IPv4: IPv4 first, in podman's record and the container's
  # /etc/hosts.
  assert_equal "$(cached_families "$PM_NET4" "$c1")" "4 6"
  assert_equal "$(hosts_order "$c1")" "4 6"
  assert_equal "$(allocations "$PM_NET4" | wc -l)" 4
}

@test "podman: stop and rm release the addresses" {
  local c1="$E2E_NAME-c1" id
  run_ctr "$c1" "$PM_NET4"
  id=$(pm inspect --format '{{.Id}}' "$c1")
  assert_equal "$(allocations "$PM_NET4" | wc -l)" 2
  run pm stop -t 0 "$c1"
  assert_success
  assert_equal "$(allocations "$PM_NET4")" ""
  assert_equal "$(ip -n "$PM_NODE" -o link show type veth)" ""
  # start attaches again, rm (after stop) leaves nothing.
  run pm start "$c1"
  assert_success
  assert_equal "$(allocations "$PM_NET4" | wc -l)" 2
  run pm exec "$c1" ping -c1 -W1 "$(inspect_ip "$c1" "$PM_NET4" 6)"
  assert_success
  run pm stop -t 0 "$c1"
  assert_success
  run pm rm "$c1"
  assert_success
  assert_equal "$(allocations "$PM_NET4")" ""
  assert_equal "$(compgen -G "/var/lib/cni/results/*-$id-*" || true)" ""
}

@test "podman: network reload keeps the addresses" {
  local c1="$E2E_NAME-c1" c2="$E2E_NAME-c2" before after
  run_ctr "$c1" "$PM_NET4"
  run_ctr "$c2" "$PM_NET4"
  before="$(inspect_ip "$c1" "$PM_NET4" 4) $(inspect_ip "$c1" "$PM_NET4" 6)"
  local link_before
  link_before=$(pm exec "$c1" cat /sys/class/net/eth0/ifindex)
  run pm network reload "$c1"
  assert_success
  # reload really detached and attached again (a new veth), and asked for the old addresses.
  refute [ "$(pm exec "$c1" cat /sys/class/net/eth0/ifindex)" = "$link_before" ]
  after="$(inspect_ip "$c1" "$PM_NET4" 4) $(inspect_ip "$c1" "$PM_NET4" 6)"
  assert_equal "$after" "$before"
  assert_equal "$(ctr_addrs "$c1" 4) $(ctr_addrs "$c1" 6)" "$before"
  assert_equal "$(allocations "$PM_NET4" | wc -l)" 4
  run pm exec "$c2" ping -c1 -W1 "$(inspect_ip "$c1" "$PM_NET4" 4)"
  assert_success
  run pm exec "$c2" ping -c1 -W1 "$(inspect_ip "$c1" "$PM_NET4" 6)"
  assert_success
}

@test "podman: an IPv6-primary network puts IPv6 first" {
  local c1="$E2E_NAME-c1" c2="$E2E_NAME-c2"
  run_ctr "$c1" "$PM_NET6"
  run_ctr "$c2" "$PM_NET6"
  assert_equal "$(cached_families "$PM_NET6" "$c1")" "6 4"
  assert_equal "$(hosts_order "$c1")" "6 4"
  run pm exec "$c1" ping -c1 -W1 "$(inspect_ip "$c2" "$PM_NET6" 6)"
  assert_success
  run pm exec "$c1" ping -c1 -W1 "$(inspect_ip "$c2" "$PM_NET6" 4)"
  assert_success
  run pm rm -f -t 0 "$c1" "$c2"
  assert_success
  assert_equal "$(allocations "$PM_NET6")" ""
}

@test "podman: -p publishes a port on both families through the chained portmap" {
  local c1="$E2E_NAME-c1" host body i
  run --separate-stderr pm run -d --name "$c1" --network "$PM_NETPM" -p 18080:80 "$IMAGE" \
    httpd -f -p 80 -h /www
  [[ $status -eq 0 ]] || fail "podman run -p failed: $stderr $output"
  for host in 192.168.10.5 fd00:192:168:10::5; do
    # httpd may need a moment to listen; each try is bounded.
    for i in 1 2 3 4 5; do
      body=$(e2e_http_get "$PM_NODE" "$host" 18080) && [[ -n "$body" ]] && break
      sleep 0.2
    done
    assert_equal "$body" "hello from a container"
  done
  run pm rm -f -t 0 "$c1"
  assert_success
  assert_equal "$(allocations "$PM_NETPM")" ""
  run ip netns exec "$PM_NODE" iptables -t nat -S
  refute_output --partial 18080
}

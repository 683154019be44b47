# Common helpers of the end-to-end suite. Every test works inside network namespaces it creates:
# a "node" namespace that stands for the host (it has no route out of this machine) and "pod"
# namespaces; all of them carry the per-run, per-test prefix $E2E_NAME and are removed in
# teardown, also when the test fails.
#
# Environment:
#   DUALSTACK_BIN_DIR  where dualstack and dualstack-ipam are (default: <repo>/build/bin)
#   E2E_REF_BIN_DIR    the reference CNI plugins (default: /usr/lib/cni)

load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

E2E_REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
DS_BIN=${DUALSTACK_BIN_DIR:-$E2E_REPO/build/bin}
REF_BIN=${E2E_REF_BIN_DIR:-/usr/lib/cni}
# Plugins are looked up in our build first, then among the reference plugins (portmap, ...).
E2E_CNI_PATH="$DS_BIN:$REF_BIN"

# A name unique to this run and test (BATS_ROOT_PID is the pid of the bats process), short
# enough to prefix namespace and container names.
e2e_name() {
  echo "dse2e-${BATS_ROOT_PID}-${BATS_SUITE_TEST_NUMBER:-f}"
}

# e2e_sweep_stale: removes namespaces left by an earlier run that was killed before its
# teardown (their bats process is gone). Namespaces of runs still alive are left alone.
e2e_sweep_stale() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^dse2e-[0-9]+-'); do
    pid=${ns#dse2e-}
    pid=${pid%%-*}
    [[ -d /proc/$pid ]] || ip netns del "$ns" 2>/dev/null || true
  done
}

e2e_require_root() {
  [[ $(id -u) -eq 0 ]] || skip "needs root: creates network namespaces"
}

# Skips the test when our plugins are not built.
e2e_require_ours() {
  local b
  for b in dualstack dualstack-ipam; do
    [[ -x "$DS_BIN/$b" ]] || skip "$b is not built in $DS_BIN (run: cmake --build build)"
  done
}

e2e_require_ref() {
  local b
  for b in "$@"; do
    [[ -x "$REF_BIN/$b" ]] || skip "reference plugin $b not found in $REF_BIN (run: e2e/setup.sh)"
  done
}

# Per-test setup: E2E_NAME, E2E_TMP (removed by bats), E2E_NODE (the node netns, created).
e2e_setup() {
  e2e_require_root
  E2E_NAME=$(e2e_name)
  E2E_TMP=$BATS_TEST_TMPDIR
  E2E_NODE="$E2E_NAME-node"
  E2E_PIDS=()
  e2e_netns_add "$E2E_NODE"
}

# Per-test teardown: stops what the test started (by PID), removes every namespace carrying
# the test's prefix (pods first, then the node; their links go with them).
e2e_teardown() {
  local pid ns
  for pid in "${E2E_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${E2E_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  [[ -n "${E2E_NAME:-}" ]] || return 0
  for ns in $(ip netns list | awk '{print $1}' | grep -F -- "$E2E_NAME-" | sort -r); do
    [[ "$ns" == "$E2E_NODE" ]] || ip netns del "$ns" 2>/dev/null || true
  done
  ip netns del "$E2E_NODE" 2>/dev/null || true
}

# e2e_netns_add NAME: a namespace with lo up.
e2e_netns_add() {
  ip netns add "$1"
  ip -n "$1" link set lo up
}

# e2e_pod N: creates the pod namespace "$E2E_NAME-podN" and prints its name.
e2e_pod() {
  # lo stays down: bringing it up is the plugin's job.
  local pod="$E2E_NAME-pod$1"
  ip netns add "$pod"
  echo "$pod"
}

# e2e_node_addresses: gives the node the InternalIPs of the example conflists, on its lo (the
# node has no uplink: nothing it sends can leave the machine).
e2e_node_addresses() {
  ip -n "$E2E_NODE" addr add 192.168.10.5/32 dev lo
  ip -n "$E2E_NODE" addr add fd00:192:168:10::5/128 dev lo
}

# --- configuration --------------------------------------------------------------------------

# e2e_conflist SRC DIR [NAME]: writes SRC into DIR (as NETCONFPATH), with every IPAM dataDir and
# the tuning plugin's dataDir pointed into the test's temp dir, and the network renamed to NAME
# when given. Prints the network name.
e2e_conflist() {
  local src=$1 dir=$2 name=${3:-}
  mkdir -p "$dir" "$E2E_TMP/store" "$E2E_TMP/tuning"
  local out
  out="$dir/$(basename "$src")"
  jq --arg store "$E2E_TMP/store" --arg tuning "$E2E_TMP/tuning" --arg name "$name" '
      (if $name != "" then .name = $name else . end)
      | .plugins |= map(
          (if has("ipam") and (.ipam.type == "host-local" or .ipam.type == "dualstack-ipam")
           then .ipam.dataDir = $store else . end)
          | (if .type == "tuning" then .dataDir = $tuning else . end))' "$src" >"$out"
  jq -r .name "$out"
}

# e2e_store_allocations NETWORK: the allocation files of NETWORK's store (address-named files).
e2e_store_allocations() {
  local d="$E2E_TMP/store/$1"
  [[ -d "$d" ]] || return 0
  find "$d" -maxdepth 1 -type f \( -name '*.*' -o -name '*:*' \) ! -name 'last_reserved_ip.*' \
    -printf '%f\n' | sort
}

# --- running plugins through libcni ---------------------------------------------------------

# e2e_build_cnitool: builds e2e/cnitool (libcni from Debian's golang-github-appc-cni-dev) once
# per bats run; sets CNITOOL.
e2e_build_cnitool() {
  CNITOOL="$BATS_RUN_TMPDIR/cnitool"
  export CNITOOL
  (
    flock 9
    [[ -x "$CNITOOL" ]] && exit 0
    cd "$E2E_REPO/e2e/cnitool" &&
      GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$BATS_RUN_TMPDIR/gocache" \
        go build -o "$CNITOOL.tmp" . &&
      mv "$CNITOOL.tmp" "$CNITOOL"
  ) 9>"$BATS_RUN_TMPDIR/cnitool.lock"
}

# e2e_cnitool VERB NETWORK POD [extra env...]: runs cnitool in the node namespace over the
# conflists in $E2E_NETCONF (default $E2E_TMP/net), with the result cache in $E2E_TMP/cache and
# the pod's name as container ID. POD may be "" (DEL of a pod whose namespace is gone; set
# CNI_CONTAINERID then). CAP_ARGS and CNI_ARGS in the environment are passed on.
e2e_cnitool() {
  local verb=$1 net=$2 pod=$3
  shift 3
  local netns=""
  [[ -z "$pod" ]] || netns="/run/netns/$pod"
  ip netns exec "$E2E_NODE" env NETCONFPATH="${E2E_NETCONF:-$E2E_TMP/net}" CNI_PATH="$E2E_CNI_PATH" \
    CNI_CACHE_DIR="$E2E_TMP/cache" CNI_CONTAINERID="${CNI_CONTAINERID:-${pod:-}}" "$@" \
    "$CNITOOL" "$verb" "$net" "$netns"
}

# e2e_cnitool_add NET POD [extra env...]: libcni ADD that must succeed; the result (stdout only)
# in $output.
e2e_cnitool_add() {
  local net=$1 pod=$2
  shift 2
  run --separate-stderr e2e_cnitool add "$net" "$pod" "$@"
  [[ $status -eq 0 ]] || fail "cnitool add $net $pod failed ($status): $stderr $output"
}

# e2e_libcni_hooks: the hooks of a file that drives the plugins through libcni. setup_file
# removes what killed runs left and builds e2e/cnitool; setup makes the test's namespaces, skips
# without our binaries and gives the node its addresses; teardown removes it all. Called at the
# top level of the file, after `load helpers`; a hook the file defines after the call replaces
# the one given here.
e2e_libcni_hooks() {
  setup_file() {
    e2e_sweep_stale
    e2e_build_cnitool
  }
  setup() {
    e2e_setup
    e2e_require_ours
    e2e_node_addresses
  }
  teardown() {
    e2e_teardown
  }
}

# --- inspecting results and namespaces ------------------------------------------------------

# e2e_result_ips RESULT: the addresses (without prefix length) of a result, in result order.
e2e_result_ips() {
  jq -r '.ips[].address | split("/")[0]' <<<"$1"
}

# e2e_result_families RESULT: "4 6", "6 4", ... in result order.
e2e_result_families() {
  jq -r '[.ips[].address | if contains(":") then "6" else "4" end] | join(" ")' <<<"$1"
}

# e2e_ip_of RESULT FAMILY: the result's address of that family (4 or 6), without prefix length.
e2e_ip_of() {
  jq -r --arg f "$2" '.ips[].address | select((contains(":")) == ($f == "6")) | split("/")[0]' \
    <<<"$1"
}

# e2e_assert_result RESULT POD FAMILIES...: the result has the shape a runtime relies on: a
# container interface named eth0 with sandbox = the pod's netns and a MAC, every IP pointing at
# it, one IP per expected family in the expected order.
e2e_assert_result() {
  local result=$1 pod=$2
  shift 2
  local want="$*"
  assert_equal "$(e2e_result_families "$result")" "$want"
  local idx
  idx=$(jq -r --arg ns "/run/netns/$pod" \
    '[.interfaces | to_entries[] | select(.value.name == "eth0" and .value.sandbox == $ns)
      | .key] | if length == 1 then .[0] else "none" end' <<<"$result")
  [[ "$idx" != none ]] || fail "result has no eth0 interface with sandbox /run/netns/$pod: $result"
  jq -e --argjson i "$idx" '.interfaces[$i].mac | test("^([0-9a-f]{2}:){5}[0-9a-f]{2}$")' \
    <<<"$result" >/dev/null || fail "eth0 in the result has no MAC: $result"
  jq -e --argjson i "$idx" 'all(.ips[]; .interface == $i)' <<<"$result" >/dev/null ||
    fail "not every ips[].interface points at eth0 (index $idx): $result"
}

# e2e_pod_addrs POD FAMILY: global addresses on the pod's eth0 (without prefix length).
e2e_pod_addrs() {
  ip -n "$1" -"$2" -o addr show dev eth0 scope global | awk '{split($4, a, "/"); print a[1]}'
}

# e2e_ping NETNS ADDRESS: one packet, one second.
e2e_ping() {
  ip netns exec "$1" ping -c1 -W1 "$2" >/dev/null 2>&1 ||
    fail "ping from $1 to $2 failed"
}

# e2e_ping_retry NETNS ADDRESS TRIES: for reference plugins that leave IPv6 duplicate-address
# detection on, a few bounded pings (one packet, one second each).
e2e_ping_retry() {
  local i
  for ((i = 0; i < $3; i++)); do
    ip netns exec "$1" ping -c1 -W1 "$2" >/dev/null 2>&1 && return 0
  done
  fail "ping from $1 to $2 failed $3 times"
}

# e2e_http_get NETNS HOST PORT: the body of GET / from HOST:PORT (bash's /dev/tcp, 3 s at most).
e2e_http_get() {
  ip netns exec "$1" timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "GET / HTTP/1.0\r\nHost: e2e\r\n\r\n" >&3
    sed "1,/^\r\?$/d" <&3' "$2" "$3"
}

# e2e_start NETNS CMD...: starts CMD in NETNS in the background, remembered for teardown.
e2e_start() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@" </dev/null >/dev/null 2>&1 3>&- &
  E2E_PIDS+=("$!")
}

# --- podman and containerd with private state -------------------------------------------------

# e2e_podman_config DIR: a private podman configuration under DIR (storage, runtime state,
# runc, cgroupfs, no networks of its own); exports CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and
# E2E_PODMAN_PREEXISTING (what podman leaves at fixed paths that existed before, for
# e2e_podman_cleanup).
e2e_podman_config() {
  local d=$1 pre=()
  mkdir -p "$d"/{net,tmp}
  [[ -e /var/lib/containers ]] && pre+=(containers)
  [[ -e /var/lib/cni ]] && pre+=(cni)
  compgen -G '/sys/fs/cgroup/*/libpod_parent' >/dev/null && pre+=(cgroups)
  [[ -e /sys/fs/cgroup/libpod_parent ]] && pre+=(cgroups)
  export E2E_PODMAN_PREEXISTING="${pre[*]}"
  cat >"$d/containers.conf" <<EOC
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[network]
network_backend = "cni"
network_config_dir = "$d/net"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$d/events.log"
tmp_dir = "$d/tmp"
static_dir = "$d/storage/libpod"
volume_path = "$d/storage/volumes"
lock_type = "file"
EOC
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
    "$d/storage" "$d/run" >"$d/storage.conf"
  export CONTAINERS_CONF="$d/containers.conf" CONTAINERS_STORAGE_CONF="$d/storage.conf"
}

# e2e_podman_cleanup DIR: removes every container and image of the private configuration in DIR,
# what podman mounted under DIR, and what it created at fixed paths (only if it did not exist
# before e2e_podman_config).
e2e_podman_cleanup() {
  local d=$1 m
  [[ -n "$d" && -f "$d/containers.conf" ]] || return 0
  podman rm -a -f -t 0 >/dev/null 2>&1 || true
  podman system reset -f >/dev/null 2>&1 || true
  awk -v d="$d" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$d"
  [[ " $E2E_PODMAN_PREEXISTING " == *" cni "* ]] || rmdir /var/lib/cni 2>/dev/null || true
  # containers/image keeps a blob-info cache for root at a fixed path.
  [[ " $E2E_PODMAN_PREEXISTING " == *" containers "* ]] || rm -rf /var/lib/containers
  if [[ " $E2E_PODMAN_PREEXISTING " != *" cgroups "* ]]; then
    find /sys/fs/cgroup -depth -type d -path '*libpod_parent*' -exec rmdir {} + 2>/dev/null || true
  fi
}

# e2e_containerd_start DIR: a containerd with its root, state, socket and plugin dirs under DIR
# and no CRI plugin (images only); its PID in E2E_CONTAINERD_PID, its socket DIR/containerd.sock.
e2e_containerd_start() {
  local d=$1 i
  mkdir -p "$d"
  cat >"$d/config.toml" <<EOC
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOC
  containerd --config "$d/config.toml" </dev/null >"$d/log" 2>&1 3>&- &
  E2E_CONTAINERD_PID=$!
  for ((i = 0; i < 100; i++)); do
    ctr --address "$d/containerd.sock" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "containerd did not start: $(cat "$d/log")"
}

# e2e_containerd_stop DIR: ends the containerd of e2e_containerd_start and removes DIR.
e2e_containerd_stop() {
  local d=$1
  if [[ -n "${E2E_CONTAINERD_PID:-}" ]]; then
    kill "$E2E_CONTAINERD_PID" 2>/dev/null || true
    wait "$E2E_CONTAINERD_PID" 2>/dev/null || true
    E2E_CONTAINERD_PID=
  fi
  awk -v d="$d" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$d"
}

# e2e_image_archive DIR: the OCI archive of scripts/image.sh: $DUALSTACK_IMAGE_ARCHIVE when set
# (CI builds it once), else built from $DS_BIN into DIR. Prints its path.
e2e_image_archive() {
  if [[ -n "${DUALSTACK_IMAGE_ARCHIVE:-}" ]]; then
    echo "$DUALSTACK_IMAGE_ARCHIVE"
    return
  fi
  "$E2E_REPO/scripts/image.sh" --no-load --bin-dir "$DS_BIN" --output "$1/dualstack-cni.oci.tar" \
    >/dev/null 2>"$1/image.log" || {
    cat "$1/image.log" >&2
    return 1
  }
  echo "$1/dualstack-cni.oci.tar"
}

# e2e_image_name ARCHIVE: the image name recorded in an OCI archive.
e2e_image_name() {
  tar -xOf "$1" index.json | jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]'
}

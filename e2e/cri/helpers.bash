# Helpers of e2e/cri.bats: a private containerd with its CRI plugin, driven over gRPC as the
# kubelet drives it (e2e/cri/cri.py on the runtime.v1 subset in e2e/cri/runtime_v1.proto).
#
# Each test starts its own containerd: config, root, state, socket, CNI conf and bin dirs in the
# test's temp dir; its network side in a throwaway node namespace; a private mount namespace in
# which /run and /var/lib are empty tmpfs (containerd 1.6 puts its shim sockets and runc state
# under /run/containerd and libcni its result cache under /var/lib/cni: neither path is
# configurable, and the host's must stay untouched). Pod network namespaces are mounted under
# the state dir (netns_mounts_under_state_dir), pod cgroups under a per-test parent.

# Debian's python3 (where python3-grpcio and python3-grpc-tools live), not whatever python3 is
# first on PATH.
CRI_PY=/usr/bin/python3
CRI_IMAGE=localhost/dualstack-e2e/pause:1

# Why the tests of cri.bats cannot run here, if they cannot.
cri_skip_reason() {
  [[ $(id -u) -eq 0 ]] || { echo "needs root: creates network namespaces"; return; }
  local b
  for b in dualstack dualstack-ipam; do
    [[ -x "$DS_BIN/$b" ]] || { echo "$b is not built in $DS_BIN (run: cmake --build build)"; return; }
  done
  for b in containerd containerd-shim-runc-v2 ctr runc /bin/busybox "$CRI_PY"; do
    command -v "$b" >/dev/null || { echo "$b is not installed (run: e2e/setup.sh)"; return; }
  done
  [[ -x "$REF_BIN/loopback" ]] ||
    { echo "the reference loopback plugin is not in $REF_BIN (run: e2e/setup.sh)"; return; }
  "$CRI_PY" -c 'import grpc, grpc_tools.protoc' 2>/dev/null ||
    { echo "python3-grpcio or python3-grpc-tools is not installed (run: e2e/setup.sh)"; return; }
}

# cri_prepare_file: once per file, the compiled CRI client modules and the pause image archive.
cri_prepare_file() {
  export CRI_GEN="$BATS_FILE_TMPDIR/cri-gen" CRI_IMAGE_TAR="$BATS_FILE_TMPDIR/pause.tar"
  mkdir -p "$CRI_GEN"
  "$CRI_PY" -m grpc_tools.protoc -I "$E2E_REPO/e2e/cri" --python_out="$CRI_GEN" \
    --grpc_python_out="$CRI_GEN" runtime_v1.proto
  # The sandbox ("pause") process: busybox-static sleeping; containerd stops it with SIGKILL.
  "$CRI_PY" "$E2E_REPO/e2e/cri/oci_image.py" "$CRI_IMAGE_TAR" "$CRI_IMAGE" /bin/busybox \
    /bin/busybox sleep 3600
}

# cri ARGS...: the CRI client against this test's containerd (every call has a deadline).
cri() {
  timeout 120 "$CRI_PY" "$E2E_REPO/e2e/cri/cri.py" --socket "$CRI_DIR/containerd.sock" \
    --gen "$CRI_GEN" "$@"
}

# cri_start IP_PREF CONFLIST: starts this test's containerd with the CRI plugin's ip_pref set to
# IP_PREF (empty: containerd's default) and CONFLIST (from conf/) as its only network, with
# the plugins logging every call to $CRI_DIR/cni.log; imports the pause image.
cri_start() {
  local pref=$1 conf=$2
  CRI_DIR="$BATS_TEST_TMPDIR/cri"
  CRI_NODE="$E2E_NAME-node"
  CRI_CGROUP="$E2E_NAME-cri"
  mkdir -p "$CRI_DIR"/{net.d,bin}
  : >"$CRI_DIR/sandboxes"
  local p
  # containerd's CRI also runs the reference loopback plugin for every pod.
  for p in "$DS_BIN/dualstack" "$DS_BIN/dualstack-ipam" "$REF_BIN"/*; do
    ln -s "$p" "$CRI_DIR/bin/"
  done
  jq --arg store "$CRI_DIR/store" --arg log "$CRI_DIR/cni.log" '
      .plugins[0].ipam.dataDir = $store | .plugins[0].logFile = $log
      | .plugins[0].logLevel = "debug"' \
    "$E2E_REPO/$conf" >"$CRI_DIR/net.d/$(basename "$conf")"
  CRI_NETWORK=$(jq -r .name "$CRI_DIR/net.d/$(basename "$conf")")
  local pref_line=""
  [[ -z "$pref" ]] || pref_line="ip_pref = \"$pref\""
  cat >"$CRI_DIR/config.toml" <<EOF
version = 2
root = "$CRI_DIR/root"
state = "$CRI_DIR/state"
[grpc]
  address = "$CRI_DIR/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$CRI_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: runc may not lower the OOM score below containerd's own.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CRI_DIR/bin"
    conf_dir = "$CRI_DIR/net.d"
    $pref_line
EOF

  e2e_netns_add "$CRI_NODE"
  # nsenter, unshare and bash all exec: $! is containerd. nsenter --net rather than `ip netns
  # exec`, which remounts /sys and hides the cgroup mounts runc needs.
  nsenter --net="/run/netns/$CRI_NODE" unshare -m --propagation private bash -c '
      mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/containerd &&
      mount -t tmpfs -o mode=0755 tmpfs /var/lib && mkdir /var/lib/cni &&
      exec containerd --config "$0/config.toml"' "$CRI_DIR" \
    </dev/null >"$CRI_DIR/containerd.log" 2>&1 3>&- &
  CRI_PID=$!
  for _ in $(seq 300); do
    [[ -S "$CRI_DIR/containerd.sock" ]] && break
    kill -0 "$CRI_PID" 2>/dev/null || fail "containerd exited: $(tail -20 "$CRI_DIR/containerd.log")"
    sleep 0.1
  done
  cri version >"$CRI_DIR/version" ||
    fail "containerd's CRI did not answer: $(tail -20 "$CRI_DIR/containerd.log")"
  # The shims containerd starts share its mount namespace: teardown finds them by it. It must
  # be the private one, or teardown would take every process of the host's for a shim.
  CRI_MNTNS=$(readlink "/proc/$CRI_PID/ns/mnt")
  if [[ -z "$CRI_MNTNS" || "$CRI_MNTNS" == "$(readlink /proc/$$/ns/mnt)" ]]; then
    CRI_MNTNS=""
    fail "containerd (pid $CRI_PID) is not in a mount namespace of its own"
  fi
  timeout 60 ctr --address "$CRI_DIR/containerd.sock" --namespace k8s.io images import \
    "$CRI_IMAGE_TAR" >/dev/null
}

# cri_version: containerd's version as its CRI reports it (e.g. 1.6.20~ds1).
cri_version() {
  jq -r .runtime_version "$CRI_DIR/version"
}

# cri_run_pod NAME: RunPodSandbox for pod NAME in namespace "default"; prints the sandbox ID.
cri_run_pod() {
  local id
  id=$(cri run "$1" "uid-$E2E_NAME-$1" default "/$CRI_CGROUP") || return 1
  echo "$id" >>"$CRI_DIR/sandboxes"
  echo "$id"
}

# cri_pod_ips POD: the sandbox's IPs as the CRI reports them, primary first, one per line (POD:
# what `cri status` prints).
cri_pod_ips() {
  jq -r '.ip, .additional_ips[]' <<<"$1"
}

# cri_families POD: "4 6" or "6 4": the families of network.ip and additional_ips.
cri_families() {
  jq -r '[.ip, .additional_ips[]] | map(if contains(":") then "6" else "4" end) | join(" ")' \
    <<<"$1"
}

# cri_allocations: the addresses held in the network's store.
cri_allocations() {
  local d="$CRI_DIR/store/$CRI_NETWORK"
  [[ -d "$d" ]] || return 0
  find "$d" -maxdepth 1 -type f \( -name '*.*' -o -name '*:*' \) ! -name 'last_reserved_ip.*' \
    -printf '%f\n' | sort
}

# cri_node_veths: the veths in the node namespace (the node ends of pods).
cri_node_veths() {
  ip -n "$CRI_NODE" -o link show type veth
}

# cri_plugin_log PROG MSG: the log lines of plugin PROG (dualstack or dualstack-ipam) whose
# message starts with MSG.
cri_plugin_log() {
  [[ -f "$CRI_DIR/cni.log" ]] || return 0
  grep -F " prog=$1 " "$CRI_DIR/cni.log" | grep -F "msg=\"$2" || true
}

# cri_netns_addrs PID FAMILY: the global addresses on eth0 in the network namespace of PID.
cri_netns_addrs() {
  nsenter -t "$1" -n ip -"$2" -o addr show dev eth0 scope global | awk '{split($4, a, "/"); print a[1]}'
}

# cri_forget ID: the sandbox ID was removed; teardown need not remove it.
cri_forget() {
  sed -i "/^$1\$/d" "$CRI_DIR/sandboxes"
}

# cri_teardown: stops and removes the test's sandboxes through the CRI, stops containerd, then
# ends by PID whatever is left of it: the processes in the test's cgroups (pods) and in
# containerd's mount namespace (shims). Removes the cgroups and the node namespace.
cri_teardown() {
  [[ -n "${CRI_DIR:-}" ]] || return 0
  local id pid
  if [[ -n "${CRI_PID:-}" ]] && kill -0 "$CRI_PID" 2>/dev/null; then
    while read -r id; do
      [[ -n "$id" ]] || continue
      cri stop "$id" >/dev/null 2>&1 || true
      cri remove "$id" >/dev/null 2>&1 || true
    done <"$CRI_DIR/sandboxes"
    kill "$CRI_PID" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$CRI_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$CRI_PID" 2>/dev/null || true
  fi
  [[ -z "${CRI_PID:-}" ]] || wait "$CRI_PID" 2>/dev/null || true
  local pids=() f
  if [[ -n "${CRI_CGROUP:-}" ]]; then
    while read -r f; do
      while read -r pid; do pids+=("$pid"); done <"$f"
    done < <(find /sys/fs/cgroup -path "*/$CRI_CGROUP/*" -name cgroup.procs 2>/dev/null)
  fi
  if [[ -n "${CRI_MNTNS:-}" ]]; then
    while read -r pid; do pids+=("$pid"); done < <(
      find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/mnt' -printf '%p %l\n' 2>/dev/null |
        awk -v ns="$CRI_MNTNS" '$2 == ns { split($1, p, "/"); print p[3] }')
  fi
  if ((${#pids[@]})); then
    kill -9 "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      local alive=0
      for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && alive=1
      done
      ((alive)) || break
      sleep 0.1
    done
  fi
  if [[ -n "${CRI_CGROUP:-}" ]]; then
    find /sys/fs/cgroup -depth -type d \( -path "*/$CRI_CGROUP" -o -path "*/$CRI_CGROUP/*" \) \
      -exec rmdir {} + 2>/dev/null || true
  fi
  [[ -z "${CRI_NODE:-}" ]] || ip netns del "$CRI_NODE" 2>/dev/null || true
  rm -rf "$CRI_DIR"
}

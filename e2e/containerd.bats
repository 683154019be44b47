#!/usr/bin/env bats
# dualstack under containerd (Debian 12's 1.6) through `ctr run --cni`, which uses go-cni on
# libcni with containerd's fixed locations: conflists from /etc/cni/net.d, plugins from
# /opt/cni/bin, the result cache in /var/lib/cni. containerd and ctr run in a private mount
# namespace where those paths are our temp dirs (the host's are untouched), with their network
# side in an isolated node namespace. ctr sends DEL with an empty CNI_NETNS once the task is gone.

bats_require_minimum_version 1.5.0
load helpers

# ct ARGS...: ctr against our containerd, in its mount namespace and the node namespace.
ct() {
  nsenter --mount="/proc/$CT_PID/ns/mnt" --net="/run/netns/$CT_NODE" \
    ctr --address "$CT_DIR/containerd.sock" --namespace "$CT_NS" "$@"
}

ct_skip_reason() {
  [[ $(id -u) -eq 0 ]] || { echo "needs root: creates network namespaces"; return; }
  local b
  for b in dualstack dualstack-ipam; do
    [[ -x "$DS_BIN/$b" ]] || { echo "$b is not built in $DS_BIN (run: cmake --build build)"; return; }
  done
  for b in containerd ctr runc /bin/busybox; do
    command -v "$b" >/dev/null || { echo "$b is not installed (run: e2e/setup.sh)"; return; }
  done
}

setup_file() {
  export CT_SKIP
  CT_SKIP=$(ct_skip_reason)
  [[ -z "$CT_SKIP" ]] || return 0
  e2e_sweep_stale

  export CT_NAME="dse2e-$BATS_ROOT_PID-containerd"
  export CT_NODE="$CT_NAME-node" CT_NS="$CT_NAME" CT_DIR="$BATS_FILE_TMPDIR/containerd"
  mkdir -p "$CT_DIR"/{net.d,bin,fifo}
  jq --arg s "$CT_DIR/store" '.plugins[0].ipam.dataDir = $s' \
    "$E2E_REPO/conf/10-dualstack.conflist" >"$CT_DIR/net.d/10-dualstack.conflist"
  local p
  for p in "$DS_BIN/dualstack" "$DS_BIN/dualstack-ipam" "$REF_BIN"/*; do
    ln -s "$p" "$CT_DIR/bin/"
  done
  cat >"$CT_DIR/config.toml" <<EOF
version = 2
root = "$CT_DIR/root"
state = "$CT_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CT_DIR/containerd.sock"
EOF
  local rootfs="$CT_DIR/rootfs" a
  mkdir -p "$rootfs/bin"
  cp /bin/busybox "$rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do
    [[ $a == busybox ]] || ln -s busybox "$rootfs/bin/$a"
  done

  # Mount points for the private mounts; created here only if missing, removed afterwards.
  local made=() d
  for d in /etc/cni/net.d /opt /run/containerd /var/lib/cni; do
    [[ -d $d ]] || { mkdir -p "$d" && made+=("$d"); }
  done
  export CT_MADE="${made[*]}"

  ip netns add "$CT_NODE"
  ip -n "$CT_NODE" link set lo up
  # nsenter, unshare and bash all exec: $! is containerd, holding the mount namespace.
  nsenter --net="/run/netns/$CT_NODE" unshare -m --propagation private bash -c '
      mount --bind "$0/net.d" /etc/cni/net.d &&
      mount -t tmpfs tmpfs /opt && mkdir -p /opt/cni/bin &&
      mount --bind "$0/bin" /opt/cni/bin &&
      mount -t tmpfs tmpfs /run/containerd &&
      mount -t tmpfs tmpfs /var/lib/cni &&
      exec containerd --config "$0/config.toml"' "$CT_DIR" \
    </dev/null >"$CT_DIR/containerd.log" 2>&1 3>&- &
  export CT_PID=$!
  local i
  for i in $(seq 100); do
    [[ -S "$CT_DIR/containerd.sock" ]] && return 0
    kill -0 "$CT_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "containerd did not start: $(cat "$CT_DIR/containerd.log")" >&2
  return 1
}

teardown_file() {
  if [[ -z "${CT_PID:-}" ]]; then
    return 0
  fi
  local t
  for t in $(ct tasks ls -q 2>/dev/null); do
    ct tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    ct tasks delete -f "$t" >/dev/null 2>&1 || true
  done
  for t in $(ct containers ls -q 2>/dev/null); do
    ct containers delete "$t" >/dev/null 2>&1 || true
  done
  kill "$CT_PID" 2>/dev/null || true
  local i
  for i in $(seq 50); do
    kill -0 "$CT_PID" 2>/dev/null || break
    sleep 0.1
  done
  ip netns del "$CT_NODE" 2>/dev/null || true
  find /sys/fs/cgroup -depth -type d -path "*/$CT_NS*" -exec rmdir {} + 2>/dev/null || true
  local d
  for d in $CT_MADE; do
    rmdir "$d" 2>/dev/null || true
  done
  rm -rf "$CT_DIR"
}

setup() {
  [[ -z "$CT_SKIP" ]] || skip "$CT_SKIP"
  E2E_NAME=$(e2e_name)
}

allocations() {
  local d="$CT_DIR/store/dualstack"
  [[ -d "$d" ]] || return 0
  find "$d" -maxdepth 1 -type f \( -name '*.*' -o -name '*:*' \) ! -name 'last_reserved_ip.*' \
    -printf '%f\n' | sort
}

@test "containerd: ctr run --cni attaches both families, tasks reach each other, DEL without netns releases" {
  local c1="$E2E_NAME-c1" c2="$E2E_NAME-c2" i
  # c1 runs until the test creates its stop file (in the rootfs both tasks share), at most 60 s.
  local stop="/stop-$c1"
  ct run --rm --cni --fifo-dir "$CT_DIR/fifo" --rootfs "$CT_DIR/rootfs" "$c1" /bin/sh -c \
    "for i in \$(seq 600); do [ -e $stop ] && exit 0; sleep 0.1; done; exit 1" \
    </dev/null >"$BATS_TEST_TMPDIR/c1.log" 2>&1 3>&- &
  local c1pid=$!
  for i in $(seq 100); do
    [[ $(allocations | wc -l) -eq 2 ]] && break
    kill -0 "$c1pid" 2>/dev/null || break
    sleep 0.1
  done
  local a4 a6
  a4=$(allocations | grep -F . | head -1)
  a6=$(allocations | grep -F : | head -1)
  [[ -n "$a4" && -n "$a6" ]] || fail "c1 got no addresses: $(allocations) $(cat "$BATS_TEST_TMPDIR/c1.log")"

  run ct run --rm --cni --fifo-dir "$CT_DIR/fifo" --rootfs "$CT_DIR/rootfs" "$c2" /bin/sh -c \
    "ip -o addr show dev eth0 scope global; ping -c1 -W1 $a4 && ping -c1 -W1 $a6"
  assert_success
  assert_output --regexp "inet 10\.244\.1\.[0-9]+/24"
  assert_output --regexp "inet6 fd00:10:244:1::[0-9a-f]+/64"
  assert_output --partial "1 packets received"

  # c1 was still running (it ends only on the stop file): stop it and wait for ctr, which calls
  # DEL once the task is gone.
  kill -0 "$c1pid" 2>/dev/null || fail "c1 ended early: $(cat "$BATS_TEST_TMPDIR/c1.log")"
  touch "$CT_DIR/rootfs$stop"
  for i in $(seq 300); do
    kill -0 "$c1pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$c1pid" 2>/dev/null && fail "ctr run of c1 did not end within 30 s of its stop file"
  wait "$c1pid" || fail "ctr run of c1 failed: $(cat "$BATS_TEST_TMPDIR/c1.log")"
  rm -f "$CT_DIR/rootfs$stop"
  # ctr called DEL for both with an empty netns path: nothing is left.
  assert_equal "$(allocations)" ""
  assert_equal "$(ip -n "$CT_NODE" -o link show type veth)" ""
  run nsenter --mount="/proc/$CT_PID/ns/mnt" find /var/lib/cni -name 'dualstack-*'
  assert_output ""
}

#!/usr/bin/env bats
# The container image of scripts/image.sh: built offline and reproducibly, small, loadable into
# podman and containerd, and its installer working as the DaemonSet's init container describes
# (conf/kubernetes/daemonset.yaml, reproduced under podman by e2e/daemonset_podman.py) against a
# temporary host root, with its network namespace an isolated one the test creates.
#
# DUALSTACK_IMAGE_ARCHIVE names an archive built already from $DUALSTACK_BIN_DIR (scripts/test.sh
# builds one); without it the image is built here. podman and containerd run with private state.

bats_require_minimum_version 1.5.0
load helpers

img_skip_reason() {
  [[ $(id -u) -eq 0 ]] || { echo "needs root: creates network namespaces and runs podman"; return; }
  local b
  for b in dualstack dualstack-ipam dualstack-install; do
    [[ -x "$DS_BIN/$b" ]] || { echo "$b is not built in $DS_BIN (run: cmake --build build)"; return; }
  done
  for b in podman runc containerd ctr; do
    command -v "$b" >/dev/null || { echo "$b is not installed (run: e2e/setup.sh)"; return; }
  done
}

setup_file() {
  export IMG_SKIP
  IMG_SKIP=$(img_skip_reason)
  [[ -z "$IMG_SKIP" ]] || return 0
  e2e_sweep_stale
  export IMG_DIR="$BATS_FILE_TMPDIR/image"
  mkdir -p "$IMG_DIR"
  e2e_podman_config "$IMG_DIR/podman"
  export IMG_ARCHIVE IMG_NAME
  IMG_ARCHIVE=$(e2e_image_archive "$IMG_DIR")
  IMG_NAME=$(e2e_image_name "$IMG_ARCHIVE")
  podman load -q -i "$IMG_ARCHIVE" >/dev/null
}

teardown_file() {
  [[ -n "${IMG_DIR:-}" ]] || return 0
  e2e_podman_cleanup "$IMG_DIR/podman"
}

setup() {
  [[ -z "$IMG_SKIP" ]] || skip "$IMG_SKIP"
  E2E_NAME=$(e2e_name)
  E2E_TMP=$BATS_TEST_TMPDIR
  E2E_PIDS=()
}

teardown() {
  [[ -z "$IMG_SKIP" ]] || return 0
  podman rm -a -f -t 0 >/dev/null 2>&1 || true
  e2e_containerd_stop "$E2E_TMP/containerd"
  e2e_teardown
}

# layer_of ARCHIVE: the path of the image's one layer, extracted into the test's temp dir.
layer_of() {
  local d manifest
  d="$E2E_TMP/oci-$(basename "$1")"
  mkdir -p "$d"
  tar -xf "$1" -C "$d"
  manifest=$(jq -r '.manifests[0].digest | sub("sha256:"; "")' "$d/index.json")
  echo "$d/blobs/sha256/$(jq -r '.layers[0].digest | sub("sha256:"; "")' "$d/blobs/sha256/$manifest")"
}

@test "image: the same binaries and packages give the same image, byte for byte" {
  run --separate-stderr "$E2E_REPO/scripts/image.sh" --no-load --bin-dir "$DS_BIN" \
    --output "$E2E_TMP/again.tar"
  assert_success
  assert_output "$IMG_NAME"
  cmp "$IMG_ARCHIVE" "$E2E_TMP/again.tar" || fail "two builds differ"
}

@test "image: the binaries, the libraries they load, license notices, nothing else; nonroot by default" {
  local layer
  layer=$(layer_of "$IMG_ARCHIVE")
  tar -tzf "$layer" | sed 's|^\./||; /^$/d' | sort >"$E2E_TMP/files"
  # No shell, no package manager: nothing but these files.
  local f extra=()
  while read -r f; do
    case $f in
      etc/ | etc/passwd | etc/group | etc/nsswitch.conf | tmp/ | lib | lib64 | sbin) ;;
      opt/ | opt/cni/ | opt/cni/bin/ | opt/cni/bin/dualstack | opt/cni/bin/dualstack-ipam) ;;
      usr/ | usr/sbin/ | usr/sbin/dualstack-install | usr/sbin/dualstack-agent) ;;
      usr/lib/ | usr/lib64/ | usr/lib64/ld-linux-x86-64.so.2) ;;
      usr/lib/x86_64-linux-gnu/ | usr/lib/x86_64-linux-gnu/*.so.[0-9]*) ;;
      usr/share/ | usr/share/doc/ | usr/share/doc/*/ | usr/share/doc/*/copyright) ;;
      usr/share/doc/dualstack-cni/image-packages) ;;
      usr/share/doc/dualstack-cni/60-dualstack-kubernetes.conflist) ;;
      *) extra+=("$f") ;;
    esac
  done <"$E2E_TMP/files"
  assert_equal "${extra[*]}" ""
  refute grep -qx 'bin/sh' "$E2E_TMP/files"
  # Small: the compressed layer is what a node pulls.
  local size=$(($(stat -c %s "$layer") / 1024 / 1024))
  echo "# compressed layer: $size MiB" >&3
  ((size < 16)) || fail "the layer is $size MiB"
  assert_equal "$(podman image inspect --format '{{.Config.User}}' "$IMG_NAME")" "65532:65532"
  assert_equal "$(podman image inspect --format '{{index .Config.Labels "org.opencontainers.image.version"}}' "$IMG_NAME")" \
    "${IMG_NAME##*:}"
  # Every binary starts as the default (non-root) user, and every library the binaries and the
  # dlopen'ed libcurl and libnftables need resolves inside the image.
  local b
  for b in /opt/cni/bin/dualstack /opt/cni/bin/dualstack-ipam /usr/sbin/dualstack-install \
    $([[ -x "$DS_BIN/dualstack-agent" ]] && echo /usr/sbin/dualstack-agent); do
    run podman run --rm --pull=never --network none --entrypoint "$b" "$IMG_NAME" --version
    assert_success
    assert_output --partial "${IMG_NAME##*:}"
  done
  for b in /usr/lib/x86_64-linux-gnu/libcurl.so.4 /usr/lib/x86_64-linux-gnu/libnftables.so.1 \
    /opt/cni/bin/dualstack /usr/sbin/dualstack-install; do
    run podman run --rm --pull=never --network none --entrypoint /lib64/ld-linux-x86-64.so.2 "$IMG_NAME" --list "$b"
    assert_success
    refute_output --partial "not found"
  done
}

@test "image: scripts/image.sh loads it into podman and containerd and prints its name" {
  podman rmi -f "$IMG_NAME" >/dev/null
  e2e_containerd_start "$E2E_TMP/containerd"
  run --separate-stderr "$E2E_REPO/scripts/image.sh" --bin-dir "$DS_BIN" \
    --output "$E2E_TMP/loaded.tar" --containerd-address "$E2E_TMP/containerd/containerd.sock"
  assert_success
  assert_output "$IMG_NAME"
  podman image exists "$IMG_NAME"
  run ctr --address "$E2E_TMP/containerd/containerd.sock" -n k8s.io images ls -q
  assert_output "$IMG_NAME"
}

@test "image: its installer, run as the DaemonSet's init container, installs the plugins that then read the node" {
  e2e_setup
  local host="$E2E_TMP/host" sa="$E2E_TMP/sa" api="$E2E_TMP/api" port
  mkdir -p "$host" "$sa" "$api"
  # The API server, in the isolated node namespace, on its loopback.
  python3 "$E2E_REPO/tests/k8s/apiserver.py" pki "$E2E_TMP/pki" >/dev/null
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$sa/token"
  echo "$(<"$sa/token") allow system:serviceaccount:kube-system:dualstack-cni" >"$api/tokens"
  cp "$E2E_TMP/pki/ca.crt" "$sa/ca.crt"
  echo kube-system >"$sa/namespace"
  jq -n '{apiVersion: "v1", kind: "Node", metadata: {name: "node1"},
          spec: {podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"]},
          status: {addresses: [{type: "InternalIP", address: "192.168.10.11"},
                               {type: "InternalIP", address: "fd00:192:168:10::11"}]}}' |
    python3 "$E2E_REPO/tests/k8s/apiserver.py" ctl --state "$api" apply - >/dev/null
  e2e_start "$E2E_NODE" python3 "$E2E_REPO/tests/k8s/apiserver.py" serve --ignore-stdin \
    --cert "$E2E_TMP/pki/server.crt" --key "$E2E_TMP/pki/server.key" --state "$api"
  local i
  for ((i = 0; i < 100; i++)); do [[ -s "$api/port" ]] && break; sleep 0.1; done
  port=$(<"$api/port")

  # The init container exactly as the manifest has it: root without capabilities, read-only
  # root, no privilege escalation; host paths under $host.
  local args
  mapfile -d '' args < <("$E2E_REPO/e2e/daemonset_podman.py" install --image "$IMG_NAME" \
    --host-root "$host" --service-account "$sa" --node node1 --api "127.0.0.1:$port" \
    --work "$E2E_TMP")
  podman image exists "$IMG_NAME" || podman load -q -i "$IMG_ARCHIVE" >/dev/null
  run podman run --rm --pull=never --network "ns:/run/netns/$E2E_NODE" "${args[@]}"
  assert_success

  # Files and modes as the runtime and the plugins need them, all root's.
  assert_equal "$(stat -c '%a %u' "$host/opt/cni/bin/dualstack" "$host/opt/cni/bin/dualstack-ipam" \
    "$host/etc/cni/net.d/10-dualstack.conflist" "$host/etc/cni/net.d/dualstack-cni.kubeconfig")" \
    "$(printf '755 0\n755 0\n644 0\n600 0')"
  run "$host/opt/cni/bin/dualstack" --version 2>&1 </dev/null
  assert_output --partial "${IMG_NAME##*:}"
  local conflist="$host/etc/cni/net.d/10-dualstack.conflist"
  assert_equal "$(jq -r '.plugins[0].ipam.node | "\(.kubeconfig) \(.name)"' "$conflist")" \
    "/etc/cni/net.d/dualstack-cni.kubeconfig node1"
  grep -qF "server: \"https://127.0.0.1:$port\"" "$host/etc/cni/net.d/dualstack-cni.kubeconfig" ||
    fail "kubeconfig names another server: $(cat "$host/etc/cni/net.d/dualstack-cni.kubeconfig")"

  # The installed IPAM plugin, given the installed conflist (paths moved under $host), reads
  # node1's podCIDRs from the API server with the kubeconfig the installer wrote.
  jq --arg k "$host/etc/cni/net.d/dualstack-cni.kubeconfig" --arg d "$E2E_TMP/store" \
    '.plugins[0] + {cniVersion, name} | .ipam.node.kubeconfig = $k | .ipam.dataDir = $d' \
    "$conflist" >"$E2E_TMP/plugin.conf"
  run --separate-stderr ip netns exec "$E2E_NODE" env CNI_COMMAND=ADD CNI_CONTAINERID=c1 \
    CNI_NETNS=/run/netns/none CNI_IFNAME=eth0 CNI_PATH="$host/opt/cni/bin" \
    "$host/opt/cni/bin/dualstack-ipam" <"$E2E_TMP/plugin.conf"
  assert_success
  assert_equal "$(jq -r '[.ips[].address] | join(" ")' <<<"$output")" \
    "10.244.1.2/24 fd00:10:244:1::2/64"
  grep -q '^/api/v1/nodes/node1 200 token' "$api/requests.log" ||
    fail "no authenticated read of node1: $(cat "$api/requests.log")"
}

#!/usr/bin/env bats
# A three-node dual-stack cluster made of network namespaces (scripts/lib/cluster.bash): an
# underlay bridge in its own namespace with one IPv4 and one IPv6 subnet and no route out of the
# machine, the test API server on it, three nodes with dualstack-install's files and
# dualstack-agent each, two pods per node attached by the installed plugin (one with ipMasq off,
# one with it on). Node 1's agent runs from the image (scripts/image.sh) under podman, as the
# DaemonSet's container describes it (e2e/daemonset_podman.py); the others run natively.
#
# The cluster is built once for the file; each test leaves it as it found it. Every wait has a
# deadline; everything is removed by PID and by namespace prefix in teardown_file, also when a
# test fails.

bats_require_minimum_version 1.5.0
load helpers
source "$BATS_TEST_DIRNAME/../scripts/lib/cluster.bash"

cl_skip_reason() {
  [[ $(id -u) -eq 0 ]] || { echo "needs root: creates network namespaces"; return; }
  local b
  for b in dualstack dualstack-ipam dualstack-install dualstack-agent; do
    [[ -x "$DS_BIN/$b" ]] || { echo "$b is not built in $DS_BIN (run: cmake --build build)"; return; }
  done
  for b in podman runc python3 openssl; do
    command -v "$b" >/dev/null || { echo "$b is not installed (run: e2e/setup.sh)"; return; }
  done
}

# podman with the file's private configuration (CL_PODMAN for the cluster library).
cl_podman() { podman "$@"; }

setup_file() {
  export CL_SKIP
  CL_SKIP=$(cl_skip_reason)
  [[ -z "$CL_SKIP" ]] || return 0
  e2e_sweep_stale
  export CL_REPO="$E2E_REPO" CL_BIN="$DS_BIN" CL_PREFIX="dse2e-$BATS_ROOT_PID-cl"
  export CL_DIR="$BATS_FILE_TMPDIR/cluster" CL_RECONCILE=3s CL_PROTO=77 CL_PODMAN=cl_podman
  export CL_PODMAN_DIR="$BATS_FILE_TMPDIR/podman"
  mkdir -p "$CL_DIR"
  e2e_podman_config "$CL_PODMAN_DIR"
  local archive
  archive=$(e2e_image_archive "$BATS_FILE_TMPDIR")
  export CL_AGENT_IMAGE
  CL_AGENT_IMAGE=$(e2e_image_name "$archive")
  podman load -q -i "$archive" >/dev/null

  cl_underlay_up
  cl_api_up
  local i
  for i in 1 2 3; do cl_node_up "$i"; done
  for i in 1 2 3; do
    cl_pod_up "$i" 1 false
    cl_pod_up "$i" 2 true
  done
  # A listener outside the cluster: the API server's namespace.
  cl_start whoami-api "$CL_PREFIX-api" python3 "$E2E_REPO/e2e/whoami.py" 8080
  cl_wait 10 "the listener in the API server's namespace" grep -q listening "$CL_DIR/whoami-api.log" >/dev/null
  cl_wait 30 "the three agents' routes" cl_converged 1 2 3 >/dev/null
}

teardown_file() {
  [[ -n "${CL_DIR:-}" ]] || return 0
  cl_down
  e2e_podman_cleanup "$CL_PODMAN_DIR"
}

setup() {
  [[ -z "$CL_SKIP" ]] || skip "$CL_SKIP"
}

teardown() {
  [[ -z "$CL_SKIP" ]] || return 0
  if [[ -n "${BATS_TEST_COMPLETED:-}" ]]; then return 0; fi
  # A failed test: what the agents said, for the report.
  local f
  for f in "$CL_DIR"/agent*.log; do
    [[ -e "$f" ]] && { echo "--- $f"; tail -20 "$f"; }
  done
  podman logs --tail 20 "$CL_PREFIX-agent1" 2>&1 | sed 's/^/agent1: /'
}

# reach FROM_NODE FROM_POD TO_NODE TO_POD FAMILY: the receiver sees the sender's pod address.
reach() {
  local src dst seen
  src=$(cl_pod_ip "$1" "$2" "$5")
  dst=$(cl_pod_ip "$3" "$4" "$5")
  seen=$(cl_whoami "$(cl_node_ns "$1")p$2" "$dst")
  [[ "$seen" == "$src" ]] ||
    fail "IPv$5 pod $2 of node $1 ($src) -> pod $4 of node $3 ($dst): the receiver saw '${seen:-nothing}'"
}

@test "cluster: every pod reaches every pod on the other nodes on both families, and is seen with its own address" {
  local i j k l f n=0
  for i in 1 2 3; do for j in 1 2; do
    for k in 1 2 3; do
      [[ $k == "$i" ]] && continue
      for l in 1 2; do for f in 4 6; do
        reach "$i" "$j" "$k" "$l" "$f"
        n=$((n + 1))
      done; done
    done
  done; done
  assert_equal "$n" 48
}

@test "cluster: with ipMasq, traffic leaving the cluster is masqueraded, traffic to pods is not" {
  # The control for the test above: pod 2 of each node has ipMasq on, so its traffic to the API
  # server's namespace (outside every podCIDR) arrives from the node's address.
  local i
  for i in 1 2 3; do
    assert_equal "$(cl_whoami "$(cl_node_ns "$i")p2" "$CL_API_V4")" "$(cl_node_v4 "$i")"
    assert_equal "$(cl_whoami "$(cl_node_ns "$i")p2" "$CL_API_V6")" "$(cl_node_v6 "$i")"
    # ... and to a pod of another node it keeps its own.
    reach "$i" 2 $((i % 3 + 1)) 1 4
    reach "$i" 2 $((i % 3 + 1)) 1 6
  done
  # The agents keep every node's podCIDRs in the sets the masquerade rules consult.
  run ip netns exec "$(cl_node_ns 2)" nft list set inet dualstack_dualstack cluster4
  assert_success
  assert_output --partial "10.244.1.0/24"
  assert_output --partial "10.244.3.0/24"
}

@test "cluster: a fourth node joins: routes to it on every node within 2 s; deleted: gone within 2 s; a foreign route stays" {
  # An operator's route to node 4's IPv4 podCIDR on node 2, with another protocol.
  ip -n "$(cl_node_ns 2)" route add "$(cl_pod_cidr4 4)" via "$(cl_node_v4 4)" proto static
  local took
  cl_node_net 4
  cl_node_register 4
  took=$(cl_wait 2 "routes to node 4 on nodes 1-3" cl_has_routes_to 4 1 2 3)
  echo "# routes to the new node everywhere after ${took}s" >&3
  # The operator's route is left alone (and the agent installs no second one beside it).
  assert_equal "$(ip -n "$(cl_node_ns 2)" -4 route show "$(cl_pod_cidr4 4)" | awk '{print $1, $3, $7}')" \
    "$(cl_pod_cidr4 4) $(cl_node_v4 4) static"

  # The new node's own agent routes to the others, and its pod reaches theirs.
  cl_node_install 4
  cl_agent_start 4
  cl_wait 10 "node 4's routes" cl_has_routes 4 1 2 3 4 >/dev/null
  cl_pod_up 4 1 false
  reach 4 1 1 1 4
  reach 4 1 1 1 6
  reach 3 2 4 1 6

  cl_ctl delete node4 >/dev/null
  took=$(cl_wait 2 "routes to node 4 gone on nodes 1-3" cl_no_routes_to 4 1 2 3)
  echo "# routes to the deleted node gone everywhere after ${took}s" >&3
  assert_equal "$(ip -n "$(cl_node_ns 2)" -4 route show "$(cl_pod_cidr4 4)" proto static | awk '{print $1}')" \
    "$(cl_pod_cidr4 4)"
  ip -n "$(cl_node_ns 2)" route del "$(cl_pod_cidr4 4)" proto static
  cl_node_down 4
  cl_converged 1 2 3
}

@test "cluster: a route deleted by hand returns within one reconcile period" {
  local ns
  ns=$(cl_node_ns 3)
  ip -n "$ns" route del "$(cl_pod_cidr4 1)" proto "$CL_PROTO"
  ip -n "$ns" route del "$(cl_pod_cidr6 2)" proto "$CL_PROTO"
  local took
  # One reconcile period (CL_RECONCILE=3s), and a second for the reconcile itself.
  took=$(cl_wait 4 "the routes deleted on node 3" cl_has_routes 3 1 2 3)
  echo "# restored after ${took}s" >&3
}

@test "cluster: an agent killed with SIGKILL and started again: no route to an existing node disappears meanwhile" {
  local ns samples=0 bad=0
  ns=$(cl_node_ns 2)
  # Every change of node 2's routes while its agent dies and starts again.
  cl_start monitor-n2 "$ns" ip -o monitor route
  cl_agent_stop 2 KILL
  cl_agent_start 2
  # Sample the routing table until the new agent has reconciled twice (adopting the routes
  # the old one left), then a reconcile period more.
  local end=$(($(date +%s) + 30)) syncs=0
  while (($(date +%s) < end)); do
    cl_has_routes 2 1 2 3 || bad=$((bad + 1))
    samples=$((samples + 1))
    ((samples % 10 == 0)) || continue
    syncs=$(cl_agent_metric 2 dualstack_agent_reconciles_total 2>/dev/null || echo 0)
    ((${syncs%.*} >= 2)) && break
  done
  ((${syncs%.*} >= 2)) || fail "the restarted agent did not reconcile twice in 30 s"
  cl_stop monitor-n2
  echo "# $samples samples of node 2's routes while its agent restarted" >&3
  assert_equal "$bad" 0
  ((samples >= 20)) || fail "only $samples samples"
  # Not even a delete-and-add: the kernel reported no deleted route of the agent's.
  run grep -E "^Deleted .*proto $CL_PROTO" "$CL_DIR/monitor-n2.log"
  assert_output ""
}

@test "cluster: the API server stopped for 10 s while a node joins: the change is applied when it returns" {
  cl_api_stop
  # The change is made in the API server's store meanwhile (as in etcd while the agents cannot
  # reach it): a fifth node.
  cl_node_json 5 | cl_ctl apply - >/dev/null
  local end=$(($(date +%s) + 10)) samples=0
  while (($(date +%s) < end)); do
    # The routes stay while the API server is away.
    cl_converged 1 2 3 || fail "routes changed while the API server was down"
    samples=$((samples + 1))
    sleep 0.2
  done
  cl_api_start
  local took
  took=$(cl_wait 40 "routes to node 5 after the API server returned" cl_has_routes_to 5 1 2 3)
  echo "# applied ${took}s after the API server returned" >&3
  cl_ctl delete node5 >/dev/null
  cl_wait 5 "routes to node 5 gone" cl_converged 1 2 3 >/dev/null
}

@test "cluster: a node whose address is on no network of the others gets no route and is reported" {
  # Node 6 claims addresses beyond the underlay: a route via them could not work.
  cl_node_json 6 172.31.0.6 fd00:172:31::6 | cl_ctl apply - >/dev/null
  cl_wait 5 "node 2's agent to report node 6" eval \
    '[[ "$(cl_agent_metric 2 dualstack_agent_unreachable_next_hops)" == 2 ]]' >/dev/null
  cl_converged 1 2 3
  run ip netns exec "$(cl_node_ns 2)" "$CL_BIN/dualstack-agent" status
  assert_success
  assert_output --partial node6
  assert_output --partial 172.31.0.6
  cl_ctl delete node6 >/dev/null
  cl_wait 5 "the report of node 6 to go" eval \
    '[[ "$(cl_agent_metric 2 dualstack_agent_unreachable_next_hops)" == 0 ]]' >/dev/null
}

@test "cluster: node 1's agent runs from the image as the DaemonSet describes, and keeps the plugin's kubeconfig" {
  run podman inspect --format '{{.State.Running}} {{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.EffectiveCaps}}' \
    "$CL_PREFIX-agent1"
  assert_output "true 0 true [CAP_NET_ADMIN]"
  # The plugin's kubeconfig on every node holds a token the agent requested, not the
  # installer's pod token, so pods are attached after the installer's token is revoked.
  local i h
  for i in 1 2 3; do
    h=$(cl_host "$i")
    ! grep -qF "$(<"$h/sa/token")" "$h/etc/cni/net.d/dualstack-cni.kubeconfig" ||
      fail "node $i's plugin kubeconfig still holds the installer's token"
  done
  h=$(cl_host 1)
  sed -i "/^$(<"$h/sa/token") /d" "$CL_DIR/api/tokens"
  rm -rf "$h"/var/lib/cni/networks/.dualstack-k8s
  cl_pod_up 1 3 false
  reach 1 3 2 1 6
}

#!/usr/bin/env bats
# The plugins driven by libcni, the library every Go container runtime and cnitool embed, through
# e2e/cnitool: ADD, CHECK and DEL over whole conflists with libcni's result cache (CHECK and DEL
# get the cached ADD result as prevResult), chains with the reference portmap, bandwidth and
# tuning plugins, and every example conflist in conf/.

bats_require_minimum_version 1.5.0
load helpers

e2e_libcni_hooks

# No allocation, no node-side veth, no cached result left for NET.
assert_all_released() {
  local net=$1
  assert_equal "$(e2e_store_allocations "$net")" ""
  assert_equal "$(ip -n "$E2E_NODE" -o link show type veth)" ""
  assert_equal "$(find "$E2E_TMP/cache/results" -name "$net-*" 2>/dev/null)" ""
}

# The reference portmap 1.1.1 (Debian 12) fails every CHECK with port mappings on a host where
# ip6tables works: it looks for the IPv4 DNAT rules in ip6tables ("could not check ipv6 dnat";
# fixed upstream after 1.1.1 by "Only check ipv6 when an IPv6 is configured"). CHECK runs the
# chain in order and stops at the first failure, so that failure, or success with a fixed
# portmap, means every plugin before portmap passed.
assert_check_passed_up_to_portmap() {
  if [[ $status -ne 0 ]]; then
    assert_output --partial 'could not check ipv6 dnat'
    assert_output --partial 'CNI-HOSTPORT-SETMARK'
  fi
}

# check_example FILE FAMILIES...: two pods attached with conf/FILE, in the node's address order,
# reachable on every family right after ADD, CHECK passes, DEL releases everything.
check_example() {
  local file=$1
  shift
  local net pod1 pod2 r1 r2 f
  net=$(e2e_conflist "$E2E_REPO/conf/$file" "$E2E_TMP/net")
  pod1=$(e2e_pod 1)
  pod2=$(e2e_pod 2)

  e2e_cnitool_add "$net" "$pod1"
  r1=$output
  # What kubelet's runtimes send along; unknown keys must be tolerated.
  CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod2;K8S_POD_INFRA_CONTAINER_ID=$pod2;K8S_POD_UID=4f1d6a8e-0000-4000-8000-000000000002" \
    e2e_cnitool_add "$net" "$pod2"
  r2=$output
  e2e_assert_result "$r1" "$pod1" "$@"
  e2e_assert_result "$r2" "$pod2" "$@"
  assert_equal "$(jq -r .cniVersion <<<"$r1")" "$(jq -r .cniVersion "$E2E_TMP/net/$file")"

  # What the runtime recorded is what the pod has; no address waits for DAD.
  for f in "$@"; do
    assert_equal "$(e2e_pod_addrs "$pod1" "$f")" "$(e2e_ip_of "$r1" "$f")"
    assert_equal "$(e2e_pod_addrs "$pod2" "$f")" "$(e2e_ip_of "$r2" "$f")"
  done
  if [[ " $* " == *" 6 "* ]]; then
    assert_equal "$(ip -n "$pod1" -o addr show tentative)" ""
  fi
  assert_equal "$(ip -n "$pod1" -br link show lo | awk '{print $2}')" "UNKNOWN"

  for f in "$@"; do
    e2e_ping "$pod1" "$(e2e_ip_of "$r2" "$f")"
    e2e_ping "$pod2" "$(e2e_ip_of "$r1" "$f")"
    e2e_ping "$E2E_NODE" "$(e2e_ip_of "$r1" "$f")"
  done

  # libcni kept the result; CHECK runs with it as prevResult.
  run --separate-stderr e2e_cnitool result "$net" "$pod1"
  assert_success
  assert_equal "$(jq -S . <<<"$output")" "$(jq -S . <<<"$r1")"
  run e2e_cnitool check "$net" "$pod1"
  assert_success
  run e2e_cnitool check "$net" "$pod2"
  assert_success

  run e2e_cnitool del "$net" "$pod1"
  assert_success
  run e2e_cnitool del "$net" "$pod2"
  assert_success
  assert_all_released "$net"
}

@test "libcni: VERSION of both plugins, and libcni validates every conflist in conf/" {
  local net f v
  net=$(e2e_conflist "$E2E_REPO/conf/10-dualstack.conflist" "$E2E_TMP/net")
  run --separate-stderr e2e_cnitool versions "$net" ""
  assert_success
  for v in 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0; do
    jq -e --arg v "$v" '.dualstack | index($v)' <<<"$output" >/dev/null ||
      fail "dualstack does not announce $v: $output"
  done
  # The IPAM plugin is not in the list: ask it directly.
  run --separate-stderr ip netns exec "$E2E_NODE" env CNI_COMMAND=VERSION \
    "$DS_BIN/dualstack-ipam" <<<'{"cniVersion": "1.0.0"}'
  assert_success
  for v in 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0; do
    jq -e --arg v "$v" '.supportedVersions | index($v)' <<<"$output" >/dev/null ||
      fail "dualstack-ipam does not announce $v: $output"
  done

  # What a runtime validating its configuration (libcni's ValidateNetworkList) sees.
  for f in "$E2E_REPO"/conf/*.conflist; do
    net=$(e2e_conflist "$f" "$E2E_TMP/net")
    run --separate-stderr e2e_cnitool validate "$net" ""
    [[ $status -eq 0 ]] || fail "libcni rejects $(basename "$f"): $stderr"
  done
  run --separate-stderr e2e_cnitool validate dualstack-portmap ""
  assert_output --partial portMappings
}

@test "libcni: conf/10-dualstack.conflist (IPv4 first)" {
  check_example 10-dualstack.conflist 4 6
}

@test "libcni: conf/20-dualstack-ipv6-primary.conflist (IPv6 first)" {
  check_example 20-dualstack-ipv6-primary.conflist 6 4
}

@test "libcni: conf/30-ipv4-only.conflist" {
  check_example 30-ipv4-only.conflist 4
}

@test "libcni: conf/40-ipv6-only.conflist" {
  check_example 40-ipv6-only.conflist 6
}

@test "libcni: conf/50-dualstack-portmap.conflist, host ports reach the pod on both families" {
  local net pod r
  net=$(e2e_conflist "$E2E_REPO/conf/50-dualstack-portmap.conflist" "$E2E_TMP/net")
  pod=$(e2e_pod 1)
  e2e_cnitool_add "$net" "$pod" \
    CAP_ARGS='{"portMappings": [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}]}'
  r=$output
  e2e_assert_result "$r" "$pod" 4 6

  mkdir -p "$E2E_TMP/www"
  echo "hello from $pod" >"$E2E_TMP/www/index.html"
  e2e_start "$pod" busybox httpd -f -p 8080 -h "$E2E_TMP/www"
  local host body i
  for host in 192.168.10.5 fd00:192:168:10::5; do
    # The server may need a moment to listen; each try is bounded.
    for i in 1 2 3 4 5; do
      body=$(e2e_http_get "$E2E_NODE" "$host" 18080) && [[ -n "$body" ]] && break
      sleep 0.2
    done
    assert_equal "$body" "hello from $pod"
  done

  # CHECK runs the chain in order, dualstack first.
  run e2e_cnitool check "$net" "$pod"
  assert_success
  CAP_ARGS='{"portMappings": [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}]}' \
    run e2e_cnitool check "$net" "$pod"
  assert_check_passed_up_to_portmap
  run e2e_cnitool del "$net" "$pod" \
    CAP_ARGS='{"portMappings": [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}]}'
  assert_success
  assert_all_released "$net"
  run ip netns exec "$E2E_NODE" iptables -t nat -S
  refute_output --partial "18080"
}

# start_apiserver DIR: certificates, a token and a Node object in DIR, and the test API server
# (tests/k8s/apiserver.py, real TLS) inside the node namespace, where the plugins run: its
# 127.0.0.1 is the node's own loopback. Sets API_PORT, API_PID and API_FD.
start_apiserver() {
  local d=$1 ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  mkdir -p "$d/state/nodes"
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
  # shellcheck disable=SC2086
  (cd "$d" &&
    openssl req -x509 $ec -days 1 -subj /CN=e2e-kubernetes-ca -keyout ca.key -out ca.crt &&
    openssl req $ec -subj /CN=kube-apiserver -keyout server.key -out server.csr &&
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
      -extfile server.ext -out server.crt) >/dev/null 2>&1 || fail "openssl failed"
  echo "e2e-token allow system:serviceaccount:kube-system:dualstack-cni" >"$d/state/tokens"
  # IPv6 first in status.addresses: the node is IPv6-primary, so IPv6 comes first in ips.
  jq -n '{kind: "Node", apiVersion: "v1", metadata: {name: "e2e-node"},
          spec: {podCIDRs: ["10.248.7.0/24", "fd00:10:248:7::/64"]},
          status: {addresses: [{type: "InternalIP", address: "fd00:192:168:10::5"},
                               {type: "InternalIP", address: "192.168.10.5"},
                               {type: "Hostname", address: "e2e-node"}]}}' \
    >"$d/state/nodes/e2e-node.json"
  # The server exits when its stdin closes: this shell holds the FIFO's write end (closed by
  # stop_apiserver, at the latest when the test process ends); the server is ended by PID.
  mkfifo "$d/stdin"
  ip netns exec "$E2E_NODE" python3 "$E2E_REPO/tests/k8s/apiserver.py" --cert "$d/server.crt" \
    --key "$d/server.key" --state "$d/state" <"$d/stdin" >"$d/port" 2>"$d/apiserver.log" &
  API_PID=$!
  E2E_PIDS+=("$API_PID")
  exec {API_FD}>"$d/stdin"
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$d/port" ]] && break
    sleep 0.1
  done
  API_PORT=$(head -1 "$d/port")
  [[ -n "$API_PORT" ]] || fail "the test API server did not start: $(cat "$d/apiserver.log")"
}

# stop_apiserver: ends the server started by start_apiserver.
stop_apiserver() {
  exec {API_FD}>&-
  kill "$API_PID" 2>/dev/null || true
  wait "$API_PID" 2>/dev/null || true
}

@test "libcni: conf/60-dualstack-kubernetes.conflist reads the node from the API server" {
  local d="$E2E_TMP/k8s" net pod1 pod2 r1 r2 f
  start_apiserver "$d"
  jq -n --arg server "https://127.0.0.1:$API_PORT" '{apiVersion: "v1", kind: "Config",
      clusters: [{name: "e2e", cluster: {server: $server, "certificate-authority": "ca.crt"}}],
      users: [{name: "dualstack-cni", user: {token: "e2e-token"}}],
      contexts: [{name: "e2e", context: {cluster: "e2e", user: "dualstack-cni"}}],
      "current-context": "e2e"}' >"$d/kubeconfig"
  chmod 0600 "$d/kubeconfig"
  jq --arg kc "$d/kubeconfig" '.plugins[0].ipam.node.kubeconfig = $kc
      | .plugins[0].ipam.node.name = "e2e-node"' \
    "$E2E_REPO/conf/60-dualstack-kubernetes.conflist" >"$d/60-dualstack-kubernetes.conflist"
  net=$(e2e_conflist "$d/60-dualstack-kubernetes.conflist" "$E2E_TMP/net")
  pod1=$(e2e_pod 1)
  pod2=$(e2e_pod 2)

  e2e_cnitool_add "$net" "$pod1"
  r1=$output
  e2e_assert_result "$r1" "$pod1" 6 4
  [[ "$(e2e_ip_of "$r1" 4)" == 10.248.7.* ]] || fail "IPv4 not from the node's podCIDR: $r1"
  [[ "$(e2e_ip_of "$r1" 6)" == fd00:10:248:7::* ]] || fail "IPv6 not from the node's podCIDR: $r1"
  for f in 4 6; do e2e_ping "$E2E_NODE" "$(e2e_ip_of "$r1" "$f")"; done
  grep -q "^/api/v1/nodes/e2e-node 200 token" "$d/state/requests.log" ||
    fail "no authenticated GET of the node: $(cat "$d/state/requests.log")"
  [[ -f "$E2E_TMP/store/.dualstack-k8s/e2e-node.json" ]] || fail "no node cache written"
  ! grep -rq e2e-token "$E2E_TMP/store" || fail "the token leaked into the store"

  # The API server goes away: ADD goes on from the cache, CHECK and DEL never need it.
  stop_apiserver
  e2e_cnitool_add "$net" "$pod2"
  r2=$output
  e2e_assert_result "$r2" "$pod2" 6 4
  for f in 4 6; do e2e_ping "$pod1" "$(e2e_ip_of "$r2" "$f")"; done
  run e2e_cnitool check "$net" "$pod1"
  assert_check_passed_up_to_portmap
  run e2e_cnitool del "$net" "$pod1"
  assert_success
  run e2e_cnitool del "$net" "$pod2"
  assert_success
  assert_all_released "$net"
}

@test "libcni: every conflist in conf/ has a test here" {
  local f
  for f in "$E2E_REPO"/conf/*.conflist; do
    grep -qF "conf/$(basename "$f")" "$BATS_TEST_FILENAME" ||
      fail "$(basename "$f") is not exercised by $(basename "$BATS_TEST_FILENAME")"
  done
}

@test "libcni: chain dualstack -> tuning -> bandwidth -> portmap, ADD/CHECK/DEL" {
  mkdir -p "$E2E_TMP/net"
  # portmap last: its CHECK is the one that fails with Debian's portmap 1.1.1 (see above).
  jq '.name = "chain" | .plugins = [.plugins[0],
        {"type": "tuning", "mac": "0a:58:0a:f4:05:63",
         "sysctl": {"net.ipv4.conf.eth0.arp_ignore": "1"}},
        {"type": "bandwidth", "capabilities": {"bandwidth": true}},
        {"type": "portmap", "capabilities": {"portMappings": true}}]' \
    "$E2E_REPO/conf/50-dualstack-portmap.conflist" >"$E2E_TMP/chain.conflist"
  local net pod r caps
  net=$(e2e_conflist "$E2E_TMP/chain.conflist" "$E2E_TMP/net")
  pod=$(e2e_pod 1)
  caps='{"portMappings": [{"hostPort": 18081, "containerPort": 8080, "protocol": "tcp"}],
         "bandwidth": {"ingressRate": 8000000, "ingressBurst": 100000,
                       "egressRate": 8000000, "egressBurst": 100000}}'
  e2e_cnitool_add "$net" "$pod" CAP_ARGS="$caps"
  r=$output
  e2e_assert_result "$r" "$pod" 4 6

  # tuning changed the MAC and told the chain so; the final result carries it.
  assert_equal "$(ip -n "$pod" -o link show eth0 | grep -o 'link/ether [^ ]*')" \
    "link/ether 0a:58:0a:f4:05:63"
  assert_equal "$(jq -r '.interfaces[] | select(.name == "eth0") | .mac' <<<"$r")" \
    "0a:58:0a:f4:05:63"
  assert_equal "$(ip netns exec "$pod" sysctl -n net.ipv4.conf.eth0.arp_ignore)" "1"
  # bandwidth found the node end of the veth in the result and shaped it.
  local host
  host=$(jq -r '[.interfaces[] | select(.sandbox == null or .sandbox == "")][0].name' <<<"$r")
  [[ -n "$host" ]] || fail "no host interface in the result: $r"
  run tc -n "$E2E_NODE" qdisc show dev "$host"
  assert_output --partial "tbf"
  run ip netns exec "$E2E_NODE" iptables -t nat -S
  assert_output --partial "18081"

  e2e_ping "$E2E_NODE" "$(e2e_ip_of "$r" 4)"
  e2e_ping "$E2E_NODE" "$(e2e_ip_of "$r" 6)"

  # Every plugin of the chain checks against the final result, including what later plugins
  # changed (the MAC).
  CAP_ARGS=$caps run e2e_cnitool check "$net" "$pod"
  assert_check_passed_up_to_portmap
  run e2e_cnitool del "$net" "$pod" CAP_ARGS="$caps"
  assert_success
  assert_all_released "$net"
  run ip netns exec "$E2E_NODE" iptables -t nat -S
  refute_output --partial "18081"
  assert_equal "$(ip -n "$E2E_NODE" -o link show type ifb)" ""
}

@test "libcni: CHECK fails when a pod route or address was removed by hand" {
  local net pod r gw4
  net=$(e2e_conflist "$E2E_REPO/conf/10-dualstack.conflist" "$E2E_TMP/net")
  pod=$(e2e_pod 1)
  e2e_cnitool_add "$net" "$pod"
  r=$output
  run e2e_cnitool check "$net" "$pod"
  assert_success

  ip -n "$pod" -4 route del default
  run e2e_cnitool check "$net" "$pod"
  assert_failure
  assert_output --regexp "[Rr]oute"

  # Put it back as ADD made it (via the result's IPv4 route), CHECK is happy again.
  gw4=$(jq -r '.routes[] | select(.dst == "0.0.0.0/0") | .gw // empty' <<<"$r")
  [[ -n "$gw4" ]] || gw4=$(jq -r '.ips[] | select(.address | contains(".")) | .gateway' <<<"$r")
  ip -n "$pod" -4 route add default via "$gw4" dev eth0
  run e2e_cnitool check "$net" "$pod"
  assert_success

  ip -n "$pod" addr del "$(jq -r '.ips[] | select(.address | contains(":")) | .address' <<<"$r")" \
    dev eth0
  run e2e_cnitool check "$net" "$pod"
  assert_failure
  assert_output --partial "$(e2e_ip_of "$r" 6)"

  run e2e_cnitool del "$net" "$pod"
  assert_success
  assert_all_released "$net"
}

@test "libcni: DEL twice, without cached result, with the pod netns gone, with both gone" {
  local net pod1 pod2 pod3 pod4
  net=$(e2e_conflist "$E2E_REPO/conf/10-dualstack.conflist" "$E2E_TMP/net")
  pod1=$(e2e_pod 1)
  pod2=$(e2e_pod 2)
  pod3=$(e2e_pod 3)
  pod4=$(e2e_pod 4)
  e2e_cnitool_add "$net" "$pod1"
  e2e_cnitool_add "$net" "$pod2"
  e2e_cnitool_add "$net" "$pod3"
  e2e_cnitool_add "$net" "$pod4"

  # Repeated DEL: the second one has no cached result any more (no prevResult).
  run e2e_cnitool del "$net" "$pod1"
  assert_success
  run e2e_cnitool del "$net" "$pod1"
  assert_success

  # The runtime lost its cache (e.g. a reboot wiped it): DEL without prevResult.
  rm -f "$E2E_TMP/cache/results/$net-$pod2-eth0"
  run e2e_cnitool del "$net" "$pod2"
  assert_success

  # The pod's namespace is gone: DEL with an empty CNI_NETNS, as containerd sends it.
  ip netns del "$pod3"
  CNI_CONTAINERID=$pod3 run e2e_cnitool del "$net" ""
  assert_success
  CNI_CONTAINERID=$pod3 run e2e_cnitool del "$net" ""
  assert_success

  # Both gone (a node reboot): no netns path, no prevResult.
  ip netns del "$pod4"
  rm -f "$E2E_TMP/cache/results/$net-$pod4-eth0"
  CNI_CONTAINERID=$pod4 run e2e_cnitool del "$net" ""
  assert_success
  assert_all_released "$net"
}

@test "libcni: every cniVersion libcni speaks, 0.3.0 to 1.0.0" {
  local v net pod r
  local n=0
  for v in 0.3.0 0.3.1 0.4.0 1.0.0; do
    n=$((n + 1))
    rm -rf "$E2E_TMP/net"
    jq --arg v "$v" '.cniVersion = $v | del(.cniVersions)' \
      "$E2E_REPO/conf/10-dualstack.conflist" >"$E2E_TMP/v.conflist"
    net=$(e2e_conflist "$E2E_TMP/v.conflist" "$E2E_TMP/net")
    pod=$(e2e_pod "v$n")
    e2e_cnitool_add "$net" "$pod"
    r=$output
    assert_equal "$(jq -r .cniVersion <<<"$r")" "$v"
    e2e_assert_result "$r" "$pod" 4 6
    if [[ $v == 0.* ]]; then
      # Before 1.0.0 every IP names its family.
      assert_equal "$(jq -r '[.ips[].version] | join(" ")' <<<"$r")" "4 6"
    fi
    e2e_ping "$E2E_NODE" "$(e2e_ip_of "$r" 6)"
    if [[ $v != 0.3.* ]]; then
      run e2e_cnitool check "$net" "$pod"
      assert_success
    fi
    run e2e_cnitool del "$net" "$pod"
    assert_success
    assert_all_released "$net"
  done
}

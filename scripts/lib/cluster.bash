# A Kubernetes-like cluster made of network namespaces, for e2e/cluster.bats and
# scripts/cluster-demo.sh. Sourced, not run. Nothing it creates can reach beyond this machine:
#
#   underlay  "$CL_PREFIX-ul": a bridge br0 and nothing else; the one L2 segment of the cluster,
#             subnets 192.168.10.0/24 and fd00:192:168:10::/64, no route out
#   api       "$CL_PREFIX-api": the test API server (tests/k8s/apiserver.py) at 192.168.10.2:6443
#             over TLS, serving Node objects and TokenRequests, state in $CL_DIR/api
#   node I    "$CL_PREFIX-nI": eth0 on the underlay with 192.168.10.(10+I) and
#             fd00:192:168:10::(10+I), its Node object "nodeI" with podCIDRs 10.244.I.0/24 and
#             fd00:10:244:I::/64; a host root $CL_DIR/nI (etc/cni/net.d, opt/cni/bin,
#             var/lib/cni) filled by dualstack-install --once; dualstack-agent in its namespace
#   pod J     "$CL_PREFIX-nIpJ" on node I: attached by the installed plugin with the installed
#             conflist (node and podCIDRs read from the API server), ipMasq on or off
#
# Every process is started in the background with its PID in $CL_DIR/pids/<what>.pid and ended
# by that PID (after checking it is still the process we started); cl_down removes everything,
# also after a failure or from another shell (cluster-demo.sh --down).
#
# Before use: CL_REPO (checkout), CL_BIN (the built binaries), CL_PREFIX (namespace prefix,
# unique per run), CL_DIR (a work directory that cl_down removes). Optional: CL_RECONCILE
# (agent's --reconcile-interval, default 3s), CL_AGENT_IMAGE + CL_PODMAN (a function running
# podman with the caller's configuration): node 1's agent then runs from the image under podman.

CL_API_V4=192.168.10.2
CL_API_V6=fd00:192:168:10::2
CL_API_PORT=6443

cl_log() { echo "cluster: $*" >&2; }

cl_node_ns() { echo "$CL_PREFIX-n$1"; }
cl_node_name() { echo "node$1"; }
cl_node_v4() { echo "192.168.10.$((10 + $1))"; }
cl_node_v6() { echo "fd00:192:168:10::$((10 + $1))"; }
cl_pod_cidr4() { echo "10.244.$1.0/24"; }
cl_pod_cidr6() { echo "fd00:10:244:$1::/64"; }
cl_host() { echo "$CL_DIR/n$1"; }
cl_apiserver() { python3 "$CL_REPO/tests/k8s/apiserver.py" "$@"; }
cl_ctl() { cl_apiserver ctl --state "$CL_DIR/api" "$@"; }

# cl_wait DEADLINE_SECONDS WHAT CMD...: runs CMD every 50 ms until it succeeds; fails naming WHAT
# when DEADLINE_SECONDS pass. Prints the seconds it took on success.
cl_wait() {
  local deadline=$1 what=$2
  shift 2
  local start now
  start=$(date +%s%N)
  while true; do
    if "$@"; then
      now=$(date +%s%N)
      printf '%d.%03d\n' $(((now - start) / 1000000000)) $((((now - start) / 1000000) % 1000))
      return 0
    fi
    now=$(date +%s%N)
    if ((now - start > deadline * 1000000000)); then
      cl_log "timed out after ${deadline}s waiting for $what"
      return 1
    fi
    sleep 0.05
  done
}

# cl_start WHAT NETNS CMD...: CMD in NETNS in the background, output in $CL_DIR/WHAT.log, its
# PID in $CL_DIR/pids/WHAT.pid.
cl_start() {
  local what=$1 ns=$2
  shift 2
  mkdir -p "$CL_DIR/pids"
  ip netns exec "$ns" "$@" </dev/null >>"$CL_DIR/$what.log" 2>&1 3>&- &
  echo "$!" >"$CL_DIR/pids/$what.pid"
  # Ended by PID (cl_stop), not through the shell's job table: no "Killed" notices.
  disown "$!"
}

# cl_pid WHAT: the PID of a process cl_start started, if it is still that process (same
# executable as when recorded is not knowable, so: alive, and its netns is one of ours).
cl_pid() {
  local f="$CL_DIR/pids/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid=$(<"$f")
  [[ "$pid" =~ ^[0-9]+$ && -d /proc/$pid ]] || return 1
  echo "$pid"
}

# cl_alive PID: the process exists and is not a zombie.
cl_alive() {
  [[ -d /proc/$1 && "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

# cl_stop WHAT [SIGNAL]: ends a process cl_start started (SIGTERM, then SIGKILL after 3 s) and
# waits until it is gone.
cl_stop() {
  local what=$1 sig=${2:-TERM} pid i
  pid=$(cl_pid "$what") || { rm -f "$CL_DIR/pids/$what.pid"; return 0; }
  kill -s "$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    cl_alive "$pid" || break
    sleep 0.05
  done
  if cl_alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
      cl_alive "$pid" || break
      sleep 0.05
    done
  fi
  wait "$pid" 2>/dev/null || true
  rm -f "$CL_DIR/pids/$what.pid"
}

# cl_netns NAME: a namespace with lo up and no duplicate-address detection on new links.
cl_netns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
}

# cl_attach NETNS PORT V4 V6: eth0 in NETNS, its peer PORT on the underlay's bridge.
cl_attach() {
  local ns=$1 port=$2 v4=$3 v6=$4 ul="$CL_PREFIX-ul"
  ip -n "$ul" link add "$port" type veth peer name eth0 netns "$ns"
  ip -n "$ul" link set "$port" master br0 up
  ip -n "$ns" addr add "$v4/24" dev eth0
  ip -n "$ns" addr add "$v6/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
}

cl_underlay_up() {
  local ul="$CL_PREFIX-ul"
  mkdir -p "$CL_DIR/pids"
  cl_netns "$ul"
  # Bridge ports carry no addresses of their own.
  ip netns exec "$ul" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ul" link add br0 type bridge
  ip -n "$ul" link set br0 up
}

# cl_api_up: PKI, tokens, the API server in its namespace; waits until it answers.
cl_api_up() {
  local ns="$CL_PREFIX-api" state="$CL_DIR/api"
  cl_netns "$ns"
  cl_attach "$ns" api "$CL_API_V4" "$CL_API_V6"
  mkdir -p "$state"
  cl_apiserver pki "$CL_DIR/pki" --san "IP:$CL_API_V4" --san "IP:$CL_API_V6" >/dev/null
  # The agents' own service account token ("allow": get, list, watch nodes, create tokens), and
  # each node's pod token for the installer.
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$CL_DIR/agent.token"
  echo "$(<"$CL_DIR/agent.token") allow system:serviceaccount:kube-system:dualstack-cni" \
    >"$state/tokens"
  cl_kubeconfig "$CL_DIR/agent.kubeconfig" "$CL_DIR/agent.token"
  cl_api_start
}

cl_api_start() {
  local ns="$CL_PREFIX-api" state="$CL_DIR/api"
  cl_start api "$ns" python3 "$CL_REPO/tests/k8s/apiserver.py" serve --ignore-stdin \
    --cert "$CL_DIR/pki/server.crt" --key "$CL_DIR/pki/server.key" --state "$state" \
    --listen "$CL_API_V4" --port "$CL_API_PORT" --bookmark-interval 1
  cl_wait 20 "the API server at $CL_API_V4:$CL_API_PORT" cl_api_ready >/dev/null
}

# The server writes its port once it listens.
cl_api_ready() {
  [[ -s "$CL_DIR/api/port" ]] &&
    ip netns exec "$CL_PREFIX-api" timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' \
      "$CL_API_V4" "$CL_API_PORT" 2>/dev/null
}

cl_api_stop() { cl_stop api TERM; }

# cl_kubeconfig FILE TOKENFILE: a kubeconfig for the API server with a token file.
cl_kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cluster
  cluster: {server: "https://$CL_API_V4:$CL_API_PORT", certificate-authority: "$CL_DIR/pki/ca.crt"}
users:
- name: dualstack-cni
  user: {tokenFile: "$2"}
contexts:
- name: cluster
  context: {cluster: cluster, user: dualstack-cni}
current-context: cluster
EOF
  chmod 0600 "$1"
}

# cl_node_json I [V4 V6]: the Node object of node I as kubelet and kube-controller-manager
# would have written it (InternalIPs IPv4 first, then the host name).
cl_node_json() {
  local i=$1 v4=${2:-$(cl_node_v4 "$1")} v6=${3:-$(cl_node_v6 "$1")}
  jq -cn --arg n "$(cl_node_name "$i")" --arg c4 "$(cl_pod_cidr4 "$i")" \
    --arg c6 "$(cl_pod_cidr6 "$i")" --arg v4 "$v4" --arg v6 "$v6" '{
    apiVersion: "v1", kind: "Node",
    metadata: {name: $n, labels: {"kubernetes.io/hostname": $n, "kubernetes.io/os": "linux"}},
    spec: {podCIDR: $c4, podCIDRs: [$c4, $c6]},
    status: {addresses: [{type: "InternalIP", address: $v4}, {type: "InternalIP", address: $v6},
                         {type: "Hostname", address: $n}]}}'
}

# cl_node_up I: node I's namespace on the underlay, its Node object, the installer's files in
# its host root, and its agent.
cl_node_up() {
  cl_node_net "$1"
  cl_node_register "$1"
  cl_node_install "$1"
  cl_agent_start "$1"
}

# cl_node_net I: node I's namespace with its address of each family on the underlay, its host
# root, and the service account token kubelet would project into the DaemonSet's pod there.
cl_node_net() {
  local i=$1 ns h
  ns=$(cl_node_ns "$i")
  h=$(cl_host "$i")
  cl_netns "$ns"
  cl_attach "$ns" "n$i" "$(cl_node_v4 "$i")" "$(cl_node_v6 "$i")"
  mkdir -p "$h"/{etc/cni/net.d,opt/cni/bin,var/lib/cni,sa}
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$h/sa/token"
  echo "$(<"$h/sa/token") allow system:serviceaccount:kube-system:dualstack-cni" \
    >>"$CL_DIR/api/tokens"
  cp "$CL_DIR/pki/ca.crt" "$h/sa/ca.crt"
  echo kube-system >"$h/sa/namespace"
}

# cl_node_register I: node I's Node object in the API server (kubelet registering it, with the
# podCIDRs kube-controller-manager assigns).
cl_node_register() {
  cl_node_json "$1" | cl_ctl apply - >/dev/null
}

# cl_node_install I: dualstack-install --once into node I's host root, with the DaemonSet's
# conflist (its store moved into the host root).
cl_node_install() {
  local i=$1 h
  h=$(cl_host "$i")
  /usr/bin/python3 -c 'import sys, yaml
print(next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d["kind"] == "ConfigMap")["data"]["10-dualstack.conflist"])' \
    "$CL_REPO/conf/kubernetes/daemonset.yaml" |
    jq --arg d "$h/var/lib/cni/networks" '.plugins |= map(select(.type == "dualstack"))
      | .plugins[0].ipam.dataDir = $d' >"$h/template.conflist"
  ip netns exec "$(cl_node_ns "$i")" "$CL_BIN/dualstack-install" --once --host-root / \
    --cni-bin-dir "$h/opt/cni/bin" --cni-conf-dir "$h/etc/cni/net.d" --source-dir "$CL_BIN" \
    --token-file "$h/sa/token" --ca-file "$h/sa/ca.crt" \
    --server "https://$CL_API_V4:$CL_API_PORT" --node-name "$(cl_node_name "$i")" \
    --conflist-template "$h/template.conflist" 2>>"$CL_DIR/install-n$i.log"
}

# cl_agent_start I: node I's agent, natively with a kubeconfig, or, for node 1 when
# CL_AGENT_IMAGE is set, from the image under podman exactly as the DaemonSet's agent container
# (in-cluster config from the service account mount, its capabilities, read-only root, host
# paths under node 1's host root).
cl_agent_start() {
  local i=$1 ns h name
  ns=$(cl_node_ns "$i")
  h=$(cl_host "$i")
  name=$(cl_node_name "$i")
  if [[ $i == 1 && -n "${CL_AGENT_IMAGE:-}" ]]; then
    mkdir -p "$h/sa-agent"
    cp "$CL_DIR/agent.token" "$h/sa-agent/token"
    cp "$CL_DIR/pki/ca.crt" "$h/sa-agent/ca.crt"
    echo kube-system >"$h/sa-agent/namespace"
    local args
    mapfile -d '' args < <("$CL_REPO/e2e/daemonset_podman.py" agent \
      --image "$CL_AGENT_IMAGE" --host-root "$h" --service-account "$h/sa-agent" \
      --node "$name" --api "$CL_API_V4:$CL_API_PORT" --work "$h" --shared /run/dualstack-cni \
      -- --reconcile-interval "${CL_RECONCILE:-3s}")
    "$CL_PODMAN" rm -f -t 0 "$CL_PREFIX-agent1" >/dev/null 2>&1 || true
    "$CL_PODMAN" run -d --pull=never --name "$CL_PREFIX-agent1" --network "ns:/run/netns/$ns" "${args[@]}" \
      >/dev/null
    return
  fi
  cl_start "agent$i" "$ns" "$CL_BIN/dualstack-agent" --kubeconfig "$CL_DIR/agent.kubeconfig" \
    --node-name "$name" --reconcile-interval "${CL_RECONCILE:-3s}" \
    --plugin-kubeconfig "$h/etc/cni/net.d/dualstack-cni.kubeconfig" \
    --token-service-account kube-system/dualstack-cni
}

# cl_agent_metric I NAME: the value of metric NAME of node I's agent (the sum over its labels).
cl_agent_metric() {
  ip netns exec "$(cl_node_ns "$1")" timeout 2 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/9967 || exit 1
    printf "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3
    cat <&3' 2>/dev/null | tr -d '\r' |
    awk -v n="$2" '{name = $1; sub(/\{.*/, "", name)} name == n {sum += $NF; found = 1}
                   END {if (found) print sum; exit !found}'
}

# cl_agent_stop I [SIGNAL]
cl_agent_stop() {
  if [[ $1 == 1 && -n "${CL_AGENT_IMAGE:-}" ]]; then
    "$CL_PODMAN" kill -s "${2:-TERM}" "$CL_PREFIX-agent1" >/dev/null 2>&1 || true
    "$CL_PODMAN" rm -f -t 0 "$CL_PREFIX-agent1" >/dev/null 2>&1 || true
    return
  fi
  cl_stop "agent$1" "${2:-TERM}"
}

# cl_node_down I: deletes node I's Node object, stops its agent and removes its namespaces.
cl_node_down() {
  local i=$1 ns
  ns=$(cl_node_ns "$i")
  cl_ctl delete "$(cl_node_name "$i")" >/dev/null
  cl_agent_stop "$i"
  local p f
  for f in "$CL_DIR/pids/whoami-n$i"p*.pid; do
    [[ -e "$f" ]] && cl_stop "$(basename "$f" .pid)"
  done
  for p in $(ip netns list | awk '{print $1}' | grep -E "^$ns(p[0-9]+)?\$" | sort -r); do
    ip netns del "$p"
  done
  ip -n "$CL_PREFIX-ul" link del "n$i" 2>/dev/null || true
}

# cl_pod_up I J MASQ: pod J on node I (MASQ: true|false), attached by node I's installed plugin
# with its installed conflist; its addresses in $CL_DIR/pods/nIpJ.{4,6}; a whoami listener in it.
cl_pod_up() {
  local i=$1 j=$2 masq=$3 ns pod h conf result
  ns=$(cl_node_ns "$i")
  pod="$ns"p$j
  h=$(cl_host "$i")
  ip netns add "$pod"
  mkdir -p "$CL_DIR/pods"
  conf="$CL_DIR/pods/n${i}p$j.conf"
  # What a runtime hands the first plugin of the list.
  jq --argjson m "$masq" '.plugins[0] + {cniVersion, name} | .ipMasq = $m' \
    "$h/etc/cni/net.d/10-dualstack.conflist" >"$conf"
  result=$(CNI_COMMAND=ADD CNI_CONTAINERID="n${i}p$j" CNI_NETNS="/run/netns/$pod" CNI_IFNAME=eth0 \
    CNI_PATH="$h/opt/cni/bin" ip netns exec "$ns" "$h/opt/cni/bin/dualstack" <"$conf") || {
    cl_log "ADD of pod $j on node $i failed: $result"
    return 1
  }
  jq -r '.ips[].address | select(contains(".")) | split("/")[0]' <<<"$result" \
    >"$CL_DIR/pods/n${i}p$j.4"
  jq -r '.ips[].address | select(contains(":")) | split("/")[0]' <<<"$result" \
    >"$CL_DIR/pods/n${i}p$j.6"
  cl_start "whoami-n${i}p$j" "$pod" python3 "$CL_REPO/e2e/whoami.py" 8080
  cl_wait 10 "the listener in pod $j of node $i" grep -q listening "$CL_DIR/whoami-n${i}p$j.log" \
    >/dev/null
}

# cl_pod_ip I J FAMILY
cl_pod_ip() { cat "$CL_DIR/pods/n${1}p$2.$3"; }

# cl_whoami FROM_NETNS ADDRESS: the source address the listener at ADDRESS:8080 saw.
cl_whoami() {
  ip netns exec "$1" timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/8080" && head -1 <&3' "$2" 2>/dev/null
}

# cl_routes I FAMILY: node I's routes of the agent's protocol, as "destination via gateway".
cl_routes() {
  ip -n "$(cl_node_ns "$1")" -"$2" route show proto "${CL_PROTO:?}" table main |
    awk '{print $1, $2, $3}' | sort
}

# cl_want_routes I FAMILY NODES...: the routes node I must have to the other NODES.
cl_want_routes() {
  local i=$1 f=$2 j
  shift 2
  for j in "$@"; do
    [[ $j == "$i" ]] && continue
    if [[ $f == 4 ]]; then
      echo "$(cl_pod_cidr4 "$j") via $(cl_node_v4 "$j")"
    else
      echo "$(cl_pod_cidr6 "$j") via $(cl_node_v6 "$j")"
    fi
  done | sort
}

# cl_has_routes I NODES...: node I's agent routes are exactly those to the other NODES.
cl_has_routes() {
  local i=$1
  shift
  [[ "$(cl_routes "$i" 4)" == "$(cl_want_routes "$i" 4 "$@")" ]] &&
    [[ "$(cl_routes "$i" 6)" == "$(cl_want_routes "$i" 6 "$@")" ]]
}

# cl_has_routes_to TARGET NODES...: every node in NODES routes TARGET's podCIDRs via TARGET's
# address of the same family (whatever the route's protocol).
cl_has_routes_to() {
  local t=$1 i
  shift
  for i in "$@"; do
    ip -n "$(cl_node_ns "$i")" -4 route show exact "$(cl_pod_cidr4 "$t")" | grep -q " via $(cl_node_v4 "$t") " || return 1
    ip -n "$(cl_node_ns "$i")" -6 route show exact "$(cl_pod_cidr6 "$t")" | grep -q " via $(cl_node_v6 "$t") " || return 1
  done
}

# cl_no_routes_to TARGET NODES...: no node in NODES has an agent route to TARGET's podCIDRs.
cl_no_routes_to() {
  local t=$1 i
  shift
  for i in "$@"; do
    ! cl_routes "$i" 4 | grep -q "^$(cl_pod_cidr4 "$t") " || return 1
    ! cl_routes "$i" 6 | grep -q "^$(cl_pod_cidr6 "$t") " || return 1
  done
}

# cl_converged NODES...: every node in NODES has exactly the routes to the others.
cl_converged() {
  local i
  for i in "$@"; do cl_has_routes "$i" "$@" || return 1; done
}

# cl_down: ends every process by its PID, removes the podman agent, every namespace with the
# prefix (pods first), and the work directory.
cl_down() {
  local f what ns
  if [[ -n "${CL_AGENT_IMAGE:-}" ]]; then
    "$CL_PODMAN" rm -f -t 0 "$CL_PREFIX-agent1" >/dev/null 2>&1 || true
  fi
  if [[ -d "$CL_DIR/pids" ]]; then
    for f in "$CL_DIR"/pids/*.pid; do
      [[ -e "$f" ]] || continue
      what=$(basename "$f" .pid)
      cl_stop "$what"
    done
  fi
  for ns in $(ip netns list | awk '{print $1}' | grep -F -- "$CL_PREFIX-" | sort -r); do
    ip netns del "$ns" 2>/dev/null || true
  done
  [[ -n "$CL_DIR" && -d "$CL_DIR" ]] && rm -rf "$CL_DIR"
  return 0
}

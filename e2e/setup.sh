#!/usr/bin/env bash
# Installs what the end-to-end suite (e2e/*.bats) needs on Debian 12, as root. Idempotent: when
# everything is installed it only asks dpkg and returns.
#   e2e/setup.sh
set -euo pipefail

packages=(
  bats bats-assert bats-support jq iproute2 iputils-ping util-linux procps
  podman containerd runc busybox-static
  golang-go golang-github-appc-cni-dev
  containernetworking-plugins iptables
  python3-grpcio python3-grpc-tools   # cri.bats: a CRI client over gRPC
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "e2e/setup.sh: missing ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "e2e/setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # runc explicitly: podman's default crun does not start containers on hosts with hybrid cgroups.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Installs what dualstack-cni needs on Debian 12 (run as root) and builds it.
#   scripts/setup.sh                 release build in ./build
#   scripts/setup.sh --asan          also a sanitizer build (ASan + UBSan, GCC) in ./build-asan
#   scripts/setup.sh --clang-asan    also a sanitizer build with clang in ./build-clang-asan
# The options combine.
set -euo pipefail
cd "$(dirname "$0")/.."

asan=0 clang_asan=0
for arg in "$@"; do
  case $arg in
    --asan) asan=1 ;;
    --clang-asan) clang_asan=1 ;;
    *) echo "usage: scripts/setup.sh [--asan] [--clang-asan]" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake ninja-build pkg-config git
  libnl-3-dev libnl-route-3-dev nlohmann-json3-dev libboost-filesystem-dev
  libgtest-dev libgmock-dev googletest libnftables-dev
  libyaml-cpp-dev libcurl4-openssl-dev openssl python3 python3-yaml
  containernetworking-plugins iproute2 iputils-ping nftables bats procps jq
  clang libclang-rt-14-dev   # libFuzzer (scripts/fuzz.sh) and clang's sanitizers
  help2man lintian           # manual pages, and the package check of scripts/package-test.sh
  clang-format clang-tidy    # the style checks (scripts/check-format.sh, scripts/check-tidy.sh)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
launcher=()
# A compiler cache, when one is installed, makes rebuilds of other checkouts cheap.
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build build -j "$jobs"
if ((asan)); then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDUALSTACK_SANITIZE=ON "${launcher[@]}" >/dev/null
  cmake --build build-asan -j "$jobs"
fi
if ((clang_asan)); then
  cmake -S . -B build-clang-asan -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
    -DDUALSTACK_SANITIZE=ON "${launcher[@]}" >/dev/null
  cmake --build build-clang-asan -j "$jobs"
fi

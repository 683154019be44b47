#!/usr/bin/env bash
# Sets up, builds, and runs every test: unit and kernel tests (ctest) on the release build and on
# the sanitizer build, then the end-to-end suite. Needs root for the namespace tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --asan

if [[ $(id -u) -ne 0 ]]; then
  echo "WARNING: not root: the network-namespace tests will be SKIPPED" >&2
fi

echo "== unit and kernel tests (release build)"
ctest --test-dir build --output-on-failure -j 2
echo "== unit and kernel tests (ASan + UBSan build)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j 2

scripts/fuzz.sh 30   # the parsers under libFuzzer + ASan/UBSan, 30 s per target
echo "== end-to-end tests (real clients: podman, libcni, the reference plugins)"
e2e/setup.sh
DUALSTACK_BIN_DIR="$PWD/build/bin" bats --timing e2e/
scripts/package-test.sh   # the .deb: build, apt-get install, one pod with the installed plugins, remove

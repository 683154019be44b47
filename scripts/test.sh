#!/usr/bin/env bash
# Sets up, builds, and runs every test: clang-tidy, unit and kernel tests (ctest) on the release
# build and on clang's sanitizer build, the fuzzers, then the end-to-end suite and the package.
# Needs root for the namespace tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --clang-asan

if [[ $(id -u) -ne 0 ]]; then
  echo "WARNING: not root: the network-namespace tests will be SKIPPED" >&2
fi

echo "== clang-tidy (lib/ and cmd/, the release build's compile database)"
scripts/check-tidy.sh --build build

echo "== unit and kernel tests (release build)"
ctest --test-dir build --output-on-failure -j 2
# clang's ASan sees what GCC's misses (a use after scope in ADD's rollback was one), so the one
# sanitizer build is clang's, and every test runs there again.
echo "== unit and kernel tests (clang ASan + UBSan build)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-clang-asan --output-on-failure -j 2
unset ASAN_OPTIONS UBSAN_OPTIONS

scripts/fuzz.sh 30   # the parsers under libFuzzer + ASan/UBSan, 30 s per target
echo "== end-to-end tests (real clients: podman, libcni, the reference plugins; the image; the cluster)"
e2e/setup.sh
# The container image, built once from the release build for e2e/image.bats and e2e/cluster.bats.
scripts/image.sh --no-load --bin-dir "$PWD/build/bin" --output build/image/dualstack-cni.oci.tar
DUALSTACK_BIN_DIR="$PWD/build/bin" DUALSTACK_IMAGE_ARCHIVE="$PWD/build/image/dualstack-cni.oci.tar" \
  bats --timing e2e/
scripts/package-test.sh   # the .deb: build, apt-get install, one pod with the installed plugins, remove

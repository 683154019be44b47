#!/usr/bin/env bash
# The long versions of the reliability tests that CI runs small (tests/hardening/):
#   kill:  1,000 attachments, ADD/DEL of both binaries 32 at a time, a third SIGKILLed at random
#   storm: 10,000 ADD/DEL operations at 64 parallel on one store
#   fuzz:  every libFuzzer target for FUZZ_SECONDS each (scripts/fuzz.sh)
# Needs root (network namespaces) and a build with tests: TEST_BIN (default build/tests).
#   sudo bench/soak.sh                 # all three
#   sudo bench/soak.sh kill storm      # a subset
# Knobs: KILL_ATTACHMENTS (1000), KILL_ROUNDS (100), STORM_OPERATIONS (10000), FUZZ_SECONDS (600).
# Everything runs in namespaces and temp dirs the tests create and remove, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

TEST_BIN=${TEST_BIN:-build/tests}
parts=("$@")
((${#parts[@]})) || parts=(kill storm fuzz)
[[ $(id -u) -eq 0 ]] || { echo "soak: needs root (network namespaces)" >&2; exit 1; }
[[ -x $TEST_BIN/test_hardening ]] || { echo "soak: $TEST_BIN/test_hardening not built" >&2; exit 1; }

status=0
for part in "${parts[@]}"; do
  start=$SECONDS
  case $part in
    kill)
      DUALSTACK_KILL_ATTACHMENTS=${KILL_ATTACHMENTS:-1000} DUALSTACK_KILL_ROUNDS=${KILL_ROUNDS:-100} \
        "$TEST_BIN/test_hardening" --gtest_filter='KillTest.*' || status=1 ;;
    storm)
      DUALSTACK_STORM_OPERATIONS=${STORM_OPERATIONS:-10000} \
        "$TEST_BIN/test_hardening" --gtest_filter='Storm.*' || status=1 ;;
    fuzz)
      scripts/fuzz.sh "${FUZZ_SECONDS:-600}" || status=1 ;;
    *) echo "soak: unknown part $part (kill, storm, fuzz)" >&2; exit 1 ;;
  esac
  echo "soak: $part took $((SECONDS - start)) s"
done
exit $status

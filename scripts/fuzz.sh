#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan) in ./build-fuzz and runs each
# for a bounded time on a copy of its seed corpus (the repository's corpus never grows here).
# Each target's time is split in two runs: most of it with inputs up to 16 KiB (fast, where
# mutation finds most), the rest with inputs up to the plugins' 1 MiB stdin limit, seeded with
# the corpus's deep-* inputs (nesting far past the parsers' limit, which only large inputs reach).
# Fails on the first crash, leak, sanitizer report or timeout; the input that caused it is kept
# in build-fuzz/crashes/ and printed with the command that replays it.
#   scripts/fuzz.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: scripts/fuzz.sh [seconds per target]" >&2
  exit 2
fi
if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (scripts/setup.sh installs clang)" >&2
  exit 1
fi

echo "== fuzzing the parsers (${seconds} s per target)"
cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)"

work=$(mktemp -d /tmp/ds-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p build-fuzz/crashes

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

failed=0
# One libFuzzer run of a target: name, corpus directory, max_len, seconds.
fuzz_run() {
  local name=$1 corpus=$2 max_len=$3 secs=$4
  local bin="build-fuzz/${name}_fuzz" log="$work/$name/log-$max_len"
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
      -print_final_stats=1 -artifact_prefix="$work/$name/artifacts/" \
      "$corpus" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $name: ok, ${runs:-?} executions of up to $max_len bytes in ${secs} s"
  else
    failed=1
    echo "fuzz: $name (inputs up to $max_len bytes): FAILED" >&2
    tail -n 60 "$log" >&2
    for a in "$work/$name/artifacts/"*; do
      [[ -e "$a" ]] || continue
      cp "$a" build-fuzz/crashes/
      echo "fuzz: input kept as build-fuzz/crashes/$(basename "$a");" \
        "replay: $bin build-fuzz/crashes/$(basename "$a")" >&2
    done
  fi
}

for corpus in tests/fuzz/corpus/*/; do
  name=$(basename "$corpus")
  bin="build-fuzz/${name}_fuzz"
  [[ -x "$bin" ]] || { echo "fuzz: $bin was not built" >&2; exit 1; }
  mkdir -p "$work/$name/corpus" "$work/$name/deep" "$work/$name/artifacts"
  cp -r "$corpus". "$work/$name/corpus/"
  if compgen -G "${corpus}deep-*" >/dev/null; then
    # A fifth of the target's time (at least a second) goes to the large inputs.
    large=$(( seconds / 5 > 0 ? seconds / 5 : 1 ))
    small=$(( seconds - large > 0 ? seconds - large : 1 ))
    fuzz_run "$name" "$work/$name/corpus" 16384 "$small"
    cp "$corpus"deep-* "$work/$name/deep/"
    fuzz_run "$name" "$work/$name/deep" 1048576 "$large"
  else
    fuzz_run "$name" "$work/$name/corpus" 16384 "$seconds"
  fi
done
exit "$failed"

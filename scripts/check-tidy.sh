#!/usr/bin/env bash
# Runs clang-tidy (14, Debian 12's) with .clang-tidy over the product's sources, lib/ and cmd/,
# using the compile database of a build. Every finding is an error.
#   scripts/check-tidy.sh [--build DIR] [FILE...]
#                                         lib/ and cmd/, or the FILEs, with DIR's database
#                                         (default: build); prints the findings, exit 1 if any
#   scripts/check-tidy.sh --self-test     shows that a planted finding is caught and a clean
#                                         file passes, with the same configuration and runner
# TIDY_JOBS sets the number of parallel clang-tidy processes (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
command -v clang-tidy >/dev/null || { echo "clang-tidy is not installed (apt-get install clang-tidy)" >&2; exit 2; }

tidy_args=(
  --quiet --config-file="$root/.clang-tidy"
  # The database is GCC's: clang does not know some of its warning flags.
  --extra-arg=-Wno-unknown-warning-option
  # The analyzer's budget per top-level function, down from 225000 nodes: inlining into
  # nlohmann::json made a single parse function cost 20 s, for no finding.
  --extra-arg=-Xclang --extra-arg=-analyzer-config --extra-arg=-Xclang --extra-arg=max-nodes=20000
)

# tidy DB FILE...: runs clang-tidy on each FILE with the compile database in DB; prints the
# findings of each file that has any and returns 1 if one has.
tidy() {
  local db=$1
  shift
  local out
  out=$(mktemp -d)
  # shellcheck disable=SC2016
  printf '%s\0' "$@" | xargs -0 -r -n 1 -P "${TIDY_JOBS:-$(nproc)}" bash -c '
    out=$1 db=$2 f=${!#}
    shift 2
    set -- "${@:1:$#-1}"
    log=$out/$(printf %s "$f" | tr / _)
    clang-tidy -p "$db" "$@" "$f" >"$log" 2>&1 || echo "$f" >>"$out/failed"
  ' _ "$out" "$db" "${tidy_args[@]}"
  local rc=0
  if [[ -s $out/failed ]]; then
    rc=1
    while IFS= read -r f; do
      grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$out/$(printf %s "$f" | tr / _)" || true
    done < <(sort "$out/failed")
    echo "clang-tidy found something in: $(sort "$out/failed" | tr '\n' ' ')" >&2
  fi
  rm -rf "$out"
  return $rc
}

if [[ ${1:-} == --self-test ]]; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  cat >"$dir/planted.cpp" <<'EOF'
#include <string>
#include <utility>
std::string joined(std::string a) {
  std::string b = std::move(a);
  return a + b;
}
EOF
  cat >"$dir/clean.cpp" <<'EOF'
#include <string>
std::string joined(const std::string &a, const std::string &b) { return a + b; }
EOF
  printf '[{"directory":"%s","file":"%s","command":"c++ -std=c++20 -c %s"},
            {"directory":"%s","file":"%s","command":"c++ -std=c++20 -c %s"}]\n' \
    "$dir" "$dir/planted.cpp" "$dir/planted.cpp" "$dir" "$dir/clean.cpp" "$dir/clean.cpp" \
    >"$dir/compile_commands.json"
  if ! tidy "$dir" "$dir/clean.cpp" >"$dir/clean.log" 2>&1; then
    cat "$dir/clean.log" >&2
    echo "self-test FAILED: a clean file did not pass" >&2
    exit 1
  fi
  if tidy "$dir" "$dir/planted.cpp" >"$dir/planted.log" 2>&1 ||
    ! grep -q 'bugprone-use-after-move' "$dir/planted.log"; then
    cat "$dir/planted.log" >&2
    echo "self-test FAILED: a use after move was not reported as an error" >&2
    exit 1
  fi
  echo "self-test ok: a planted use after move is caught, a clean file passes"
  exit 0
fi

usage="usage: scripts/check-tidy.sh [--build DIR] [FILE...] | --self-test"
build=build
if [[ ${1:-} == --build ]]; then
  build=${2:?$usage}
  shift 2
fi
[[ ${1:-} != -* ]] || { echo "$usage" >&2; exit 2; }
[[ -f $build/compile_commands.json ]] || { echo "no $build/compile_commands.json: run scripts/setup.sh first" >&2; exit 2; }
files=("$@")
((${#files[@]})) || mapfile -t files < <(git ls-files 'lib/*.cpp' 'cmd/*.cpp')
# The test binaries share a precompiled header made by GCC, which clang cannot read: a copy of the
# database without it (each test file includes what it uses).
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
python3 - "$build/compile_commands.json" "$db/compile_commands.json" <<'PY'
import json, re, sys
entries = json.load(open(sys.argv[1]))
for e in entries:
    e["command"] = re.sub(r" -include \S*cmake_pch\.hxx| -Winvalid-pch", "", e["command"])
json.dump(entries, open(sys.argv[2], "w"))
PY
start=$SECONDS
if ! tidy "$db" "${files[@]}"; then
  exit 1
fi
echo "clang-tidy: no finding in ${#files[@]} files ($((SECONDS - start)) s)"

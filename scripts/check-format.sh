#!/usr/bin/env bash
# Checks that every C++ file git tracks follows .clang-format (clang-format 14, Debian 12's).
#   scripts/check-format.sh              the tree; lists the files that drift, exit 1 if any
#   scripts/check-format.sh --self-test  shows that a badly formatted file is caught
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format is not installed (apt-get install clang-format)" >&2; exit 2; }
if [[ ${1:-} == --self-test ]]; then
  if printf 'int  main( ){return 0;}\n' | clang-format --dry-run --Werror --assume-filename=x.cpp 2>/dev/null; then
    echo "self-test FAILED: a badly formatted file passed" >&2
    exit 1
  fi
  echo "self-test ok: a badly formatted file is caught"
  exit 0
fi
drift=()
while IFS= read -r -d '' f; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || drift+=("$f")
done < <(git ls-files -z '*.cpp' '*.hpp')
if ((${#drift[@]})); then
  printf 'not formatted (clang-format -i FILE): %s\n' "${drift[@]}" >&2
  exit 1
fi
echo "every C++ file follows .clang-format"

#!/usr/bin/env python3
"""Checks that every #include "dualstack/<layer>/..." follows the layer graph of CMakeLists.txt.

  check-layers.py GRAPH SOURCE_DIR     check the tree (run by ctest)
  check-layers.py --self-test          show that a planted violation is caught

GRAPH has one line per layer or binary, as CMake writes it from dualstack_layer() and
dualstack_binary(): "lib/<layer>:<dep>,<dep>" or "cmd/<binary>:<dep>,...". A file in lib/<L>/ or
include/dualstack/<L>/ may include its own layer and every layer L depends on, directly or through
another layer; a file in cmd/<B>/ the layers B links. The linker only catches a forbidden
dependency when a symbol is used; this catches the include itself, and an include that climbs
out of its folder ("../").
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def read_graph(lines):
    graph = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        node, _, deps = line.partition(":")
        graph[node] = [d for d in deps.split(",") if d]
    return graph


def closure(graph, node):
    seen = set()
    todo = list(graph.get(node, []))
    while todo:
        layer = todo.pop()
        if layer in seen:
            continue
        seen.add(layer)
        todo.extend(graph.get("lib/" + layer, []))
    return seen


def owner(rel):
    parts = rel.split(os.sep)
    if len(parts) >= 3 and parts[0] == "lib":
        return "lib/" + parts[1], parts[1]
    if len(parts) >= 4 and parts[0] == "include" and parts[1] == "dualstack":
        return "lib/" + parts[2], parts[2]
    if len(parts) >= 3 and parts[0] == "cmd":
        return "cmd/" + parts[1], None
    return None, None


def check(graph, root):
    layers = {n[4:] for n in graph if n.startswith("lib/")}
    problems = []
    for top in ("lib", "include", "cmd"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".cpp", ".hpp", ".h", ".cc")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                node, own = owner(rel)
                if node is None:
                    continue
                if node not in graph:
                    problems.append(f"{rel}: {node} is not a layer or binary of CMakeLists.txt")
                    continue
                allowed = closure(graph, node) | ({own} if own else set())
                with open(path, encoding="utf-8", errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = m.group(1)
                        if target.startswith("../") or "/../" in target:
                            problems.append(f"{rel}:{n}: includes \"{target}\", outside its folder")
                            continue
                        if not target.startswith("dualstack/"):
                            continue
                        layer = target.split("/")[1]
                        if layer not in layers:
                            problems.append(f"{rel}:{n}: includes \"{target}\" of no known layer")
                        elif layer not in allowed:
                            problems.append(
                                f"{rel}:{n}: {node} includes \"{target}\", but does not depend on "
                                f"lib/{layer} (it may use: {', '.join(sorted(allowed)) or 'nothing'})")
    return problems


def self_test():
    graph = read_graph(["lib/sys:", "lib/netlink:sys", "lib/cni:sys", "cmd/tool:netlink"])
    with tempfile.TemporaryDirectory() as root:
        def put(rel, text):
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        put("lib/netlink/a.cpp", '#include "dualstack/sys/fd.hpp"\n#include "local.hpp"\n')
        put("include/dualstack/netlink/a.hpp", '#include "dualstack/sys/io.hpp"\n')
        put("cmd/tool/main.cpp", '#include "dualstack/netlink/a.hpp"\n#include "dualstack/sys/io.hpp"\n')
        if check(graph, root):
            print("self-test: a clean tree was reported:", check(graph, root))
            return 1
        put("include/dualstack/netlink/b.hpp", '#include "dualstack/cni/error.hpp"\n')
        put("cmd/tool/other.cpp", '#include "dualstack/cni/error.hpp"\n')
        put("lib/cni/c.cpp", '#include "../netlink/x.hpp"\n')
        found = check(graph, root)
        want = ["include/dualstack/netlink/b.hpp:1", "cmd/tool/other.cpp:1", "lib/cni/c.cpp:1"]
        missing = [w for w in want if not any(p.startswith(w) for p in found)]
        if missing or len(found) != len(want):
            print("self-test: expected violations at", want, "got", found)
            return 1
    print("self-test: planted violations reported, clean tree accepted")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        graph = read_graph(f)
    problems = check(graph, argv[2])
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} include(s) against the layer graph", file=sys.stderr)
        return 1
    print(f"check-layers: {len(graph)} layers and binaries, every include follows the graph")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""The measuring side of bench/agent.sh; runs inside the benchmark's node network namespace.

One run = one cluster size: the test API server (tests/k8s/apiserver.py, TLS on 127.0.0.1 of this
namespace) serving NODES realistic Node objects (labels, conditions, 30 images: ~6 KB each) plus
the node the agent runs for, then
  1. start dualstack-agent; time until every route (2 per other node) is in the kernel, taken from
     `ip -ts monitor route` (kernel event timestamps, microseconds);
  2. CHANGES times: give one node (a random one) a new InternalIP, through the server's control
     socket; time from sending the change to the kernel's event for the replaced route. The
     control socket's answer time is the server's own share (it answers once the change is
     stored and handed to the watch streams);
  3. the agent's CPU time over those changes (/proc/PID/stat) and its peak RSS (VmHWM).
Prints one JSON object on stdout. Every process it starts is ended by PID on the way out.
"""
import argparse
import calendar
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "k8s"))
import apiserver  # noqa: E402  (realistic_node: the same Nodes the server generates)

children = []


def start(args, **kw):
    p = subprocess.Popen(args, **kw)
    children.append(p)
    return p


def stop_all():
    for p in reversed(children):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cpu_seconds(pid):
    """CPU time of every thread of the process, in nanoseconds' precision (schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # a thread that just ended
    return total / 1e9


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Monitor:
    """`ip -ts monitor route`, its lines with their kernel-side timestamps as Unix times."""

    def __init__(self, path):
        env = dict(os.environ, TZ="UTC")
        self.out = open(path, "w+")
        self.proc = start(["ip", "-ts", "monitor", "route"], stdout=self.out,
                          stderr=subprocess.DEVNULL, env=env)
        self.reader = open(path)
        self.pending = ""
        time.sleep(0.3)  # subscribed

    def lines(self):
        """New complete lines as (unix time, text)."""
        self.pending += self.reader.read()
        *done, self.pending = self.pending.split("\n")
        out = []
        for line in done:
            if not line.startswith("["):
                continue
            stamp, _, text = line[1:].partition("] ")
            t = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
            out.append((t + float("0." + stamp[20:]), text))
        return out


def control(state, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(os.path.join(state, "control.sock"))
    s.sendall(json.dumps(req).encode() + b"\n")
    out = json.loads(s.makefile().readline())
    s.close()
    if not out.get("ok"):
        raise RuntimeError(f"ctl {req['cmd']}: {out.get('error')}")
    return out


def list_all(url, token, cafile):
    """Every page of the Node list, as a client would read it: the server's cost of a list."""
    ctx = ssl.create_default_context(cafile=cafile)
    cont, pages, size = "", 0, 0
    while True:
        q = "?limit=500" + (f"&continue={cont}" if cont else "")
        req = urllib.request.Request(url + "/api/v1/nodes" + q,
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
            body = r.read()
        size += len(body)
        pages += 1
        cont = json.loads(body)["metadata"].get("continue", "")
        if not cont:
            return pages, size


def pod_cidr4(i):
    return f"10.{64 + i // 256}.{i % 256}.0/24"


def report(argv):
    """The Markdown table and the targets, from the runs' JSON lines on stdin. Exit status 3
    when a target is missed."""
    ap = argparse.ArgumentParser(prog="agent.py report")
    ap.add_argument("--load0", default="?")
    ap.add_argument("--load1", default="?")
    ap.add_argument("--changes", default="?")
    a = ap.parse_args(argv)
    rows = [json.loads(line) for line in sys.stdin if line.strip()]
    print(f"dualstack-agent; load average {a.load0} at the start, {a.load1} at the end; "
          f"{a.changes} changes per size\n")
    print("| Nodes | routes | initial sync | server: one list | change p50 | change p99 | "
          "server's answer p50 / p99 | after it p50 / p99 | CPU per change | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['nodes']} | {r['routes']} | {r['initial_s'] * 1000:.0f} ms "
              f"| {r['server_list_s'] * 1000:.0f} ms ({r['list_pages']} pages, "
              f"{r['list_bytes'] / 1e6:.1f} MB) | {r['change_p50_ms']:.1f} ms "
              f"| {r['change_p99_ms']:.1f} ms | {r['server_p50_ms']:.1f} / {r['server_p99_ms']:.1f} ms "
              f"| {r['agent_p50_ms']:.1f} / {r['agent_p99_ms']:.1f} ms "
              f"| {r['cpu_per_change_ms']:.2f} ms | {r['rss_peak_kb'] / 1024:.1f} MB |")
    big = max(rows, key=lambda r: r["nodes"])
    small = min(rows, key=lambda r: r["nodes"])
    ok = True

    def target(name, good, detail):
        nonlocal ok
        ok = ok and good
        print(f"{'PASS' if good else 'FAIL'}: {name}: {detail}")

    print()
    target("initial sync <= 2 s", big["initial_s"] <= 2.0,
           f"{big['initial_s']:.2f} s for {big['routes']} routes")
    target("change p99 <= 50 ms", all(r["change_p99_ms"] <= 50 for r in rows),
           ", ".join(f"{r['change_p99_ms']:.1f} ms at {r['nodes']} Nodes" for r in rows))
    if big is not small:
        ratio = big["cpu_per_change_ms"] / max(small["cpu_per_change_ms"], 1e-9)
        target("CPU per change at the largest size <= 1.5x the smallest", ratio <= 1.5,
               f"{big['cpu_per_change_ms']:.2f} / {small['cpu_per_change_ms']:.2f} ms = {ratio:.2f}x")
        lat = big["change_p50_ms"] / max(small["change_p50_ms"], 1e-9)
        print(f"(change p50 at {big['nodes']} vs {small['nodes']} Nodes: {lat:.2f}x)")
    target("peak RSS <= 25 MB", big["rss_peak_kb"] <= 25 * 1024,
           f"{big['rss_peak_kb'] / 1024:.1f} MB at {big['nodes']} Nodes")
    print("SIGTERM to exit: " + ", ".join(f"{r['stop_s'] * 1000:.0f} ms" for r in rows))
    return 0 if ok else 3


def main(argv):
    ap = argparse.ArgumentParser(prog="agent.py run")
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--network", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args(argv)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    server_py = os.path.join(root, "tests", "k8s", "apiserver.py")
    work = tempfile.mkdtemp(prefix=f"run{a.nodes}-", dir=a.work)
    state, pki = os.path.join(work, "state"), os.path.join(work, "pki")
    os.makedirs(state)
    subprocess.run([sys.executable, server_py, "pki", pki], check=True)
    token = "bench-token"
    with open(os.path.join(state, "tokens"), "w") as f:
        f.write(f"{token} allow system:serviceaccount:kube-system:dualstack-cni\n")
    server = start([sys.executable, server_py, "--cert", f"{pki}/server.crt", "--key",
                    f"{pki}/server.key", "--state", state, "--listen", "127.0.0.1", "--port", "0",
                    "--ignore-stdin"], stdout=subprocess.DEVNULL)
    port_file = os.path.join(state, "port")
    for _ in range(300):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    url = f"https://127.0.0.1:{open(port_file).read().strip()}"

    # Nodes 1..N (the generator's node 0 has the network address 172.16.0.0 as its InternalIP),
    # and the agent's own node.
    control(state, {"cmd": "generate", "count": a.nodes, "prefix": "node-", "start": 1})
    me = apiserver.realistic_node(0, "bench-")
    me["metadata"]["name"] = "bench-self"
    me["spec"]["podCIDR"] = "10.255.255.0/24"
    me["spec"]["podCIDRs"] = ["10.255.255.0/24", "fd00:10:255::/64"]
    me["status"]["addresses"][0]["address"] = "172.16.200.1"
    me["status"]["addresses"][1]["address"] = "fd00:172:16::ffff"
    control(state, {"cmd": "apply", "objects": [me]})

    kubeconfig = os.path.join(work, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{url}", certificate-authority: "{pki}/ca.crt"}}}}]
users: [{{name: u, user: {{token: {token}}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")

    # The server's own cost of the list the agent will make (warm: a second read).
    list_all(url, token, f"{pki}/ca.crt")
    t = time.time()
    pages, size = list_all(url, token, f"{pki}/ca.crt")
    server_list = time.time() - t

    mon = Monitor(os.path.join(work, "monitor"))
    want = 2 * a.nodes
    t0 = time.time()
    agent = start([os.path.join(a.bin, "dualstack-agent"), "--kubeconfig", kubeconfig,
                   "--node-name", "bench-self", "--metrics-address", "127.0.0.1:0",
                   "--cni-network", a.network, "--log-level", "warn"],
                  stderr=open(os.path.join(work, "agent.log"), "w"))
    added, t_done = 0, None
    while t_done is None:
        if time.time() - t0 > a.timeout:
            raise RuntimeError(f"only {added} of {want} routes after {a.timeout} s")
        if agent.poll() is not None:
            raise RuntimeError("the agent exited: " + open(os.path.join(work, "agent.log")).read())
        for ts, text in mon.lines():
            if "proto 77" in text and not text.startswith("Deleted"):
                added += 1
                if added == want:
                    t_done = ts
        time.sleep(0.005)
    initial = t_done - t0
    rss_after_sync = peak_rss_kb(agent.pid)

    # Changes: one node at a time gets a new InternalIP.
    rng = random.Random(42)
    latencies, server_share, after_server = [], [], []
    cpu0 = cpu_seconds(agent.pid)
    for k in range(a.changes):
        i = rng.randint(1, a.nodes)
        node = apiserver.realistic_node(i, "node-")
        new = f"172.16.{100 + k // 250}.{1 + k % 250}"
        node["status"]["addresses"][0]["address"] = new
        expect = f"{pod_cidr4(i)} via {new} "
        ts = time.time()
        control(state, {"cmd": "apply", "objects": [node]})
        t_ack = time.time()
        server_share.append(t_ack - ts)
        seen = None
        while seen is None:
            if time.time() - ts > 30:
                raise RuntimeError(f"change {k}: no route event `{expect}` within 30 s")
            for t_ev, text in mon.lines():
                if text.startswith(expect):
                    seen = t_ev
            if seen is None:
                time.sleep(0.0005)
        latencies.append(seen - ts)
        after_server.append(seen - t_ack)
    cpu = cpu_seconds(agent.pid) - cpu0
    rss = peak_rss_kb(agent.pid)

    t_stop = time.time()
    agent.send_signal(signal.SIGTERM)
    agent.wait(10)
    stop_time = time.time() - t_stop

    def pct(xs, p):
        s = sorted(xs)
        return s[max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))]

    print(json.dumps({
        "nodes": a.nodes, "routes": want, "initial_s": initial,
        "server_list_s": server_list, "list_pages": pages, "list_bytes": size,
        "change_p50_ms": pct(latencies, 50) * 1000, "change_p99_ms": pct(latencies, 99) * 1000,
        "change_max_ms": max(latencies) * 1000,
        "server_p50_ms": pct(server_share, 50) * 1000, "server_p99_ms": pct(server_share, 99) * 1000,
        "agent_p50_ms": pct(after_server, 50) * 1000, "agent_p99_ms": pct(after_server, 99) * 1000,
        "cpu_per_change_ms": cpu / a.changes * 1000, "changes": a.changes,
        "rss_sync_kb": rss_after_sync, "rss_peak_kb": rss, "stop_s": stop_time,
    }))


if __name__ == "__main__":
    if sys.argv[1:2] == ["report"]:
        sys.exit(report(sys.argv[2:]))
    if sys.argv[1:2] != ["run"]:
        sys.exit("usage: agent.py run ... | agent.py report ...")
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        main(sys.argv[2:])
    finally:
        stop_all()

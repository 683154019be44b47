#!/usr/bin/python3
"""Runs a container of conf/kubernetes/daemonset.yaml under podman the way a kubelet would.

  daemonset_podman.py CONTAINER --image IMAGE --host-root DIR --service-account DIR
                      --node NAME --api HOST:PORT --work DIR [--shared PATH]...
                      [-- EXTRA_ARG...]

Prints, NUL-separated, the arguments for `podman run` (after `run` and the caller's own options
such as --name and --network) that reproduce CONTAINER (an init container or a container) of the
DaemonSet: its user, capabilities, read-only root, no-new-privileges, seccomp profile, command,
args (+ EXTRA_ARG), env (the downward API's spec.nodeName as NAME; KUBERNETES_SERVICE_HOST/PORT
as the kubelet sets them), its hostPath mounts under DIR (the node's root; a --shared PATH is
this machine's own, e.g. a lock directory the plugins share with the container), its ConfigMap
volumes written into --work, and the service account directory mounted where kubelet projects it.
Reads the manifest with Debian's python3-yaml. Anything in the spec it does not know how to
reproduce is an error, so a change of the manifest cannot pass the tests unexamined.
"""
import argparse
import os
import sys

import yaml

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conf", "kubernetes",
                        "daemonset.yaml")
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
KNOWN_SC = {"runAsUser", "runAsNonRoot", "allowPrivilegeEscalation", "readOnlyRootFilesystem",
            "seccompProfile", "capabilities"}


def fail(msg):
    sys.exit(f"daemonset_podman.py: {msg}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("container")
    p.add_argument("--image", required=True)
    p.add_argument("--host-root", required=True)
    p.add_argument("--service-account", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--api", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--shared", action="append", default=[])
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)

    with open(MANIFEST) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    pod = ds["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod.get("initContainers", []) + pod["containers"]}
    if a.container not in containers:
        fail(f"no container {a.container} in {MANIFEST}")
    c = containers[a.container]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    out = []

    sc = dict(pod.get("securityContext", {}))
    sc.update(c.get("securityContext", {}))
    unknown = set(sc) - KNOWN_SC
    if unknown:
        fail(f"securityContext fields not reproduced: {sorted(unknown)}")
    out += ["--user", str(sc.get("runAsUser", 65532))]
    for cap in sc.get("capabilities", {}).get("drop", []):
        out += ["--cap-drop", cap]
    for cap in sc.get("capabilities", {}).get("add", []):
        out += ["--cap-add", cap]
    if sc.get("readOnlyRootFilesystem"):
        out.append("--read-only")
    if sc.get("allowPrivilegeEscalation") is False:
        out += ["--security-opt", "no-new-privileges"]
    seccomp = sc.get("seccompProfile", {}).get("type", "Unconfined")
    if seccomp == "Unconfined":
        out += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":  # RuntimeDefault: podman's default profile
        fail(f"seccompProfile {seccomp} not reproduced")

    host, port = a.api.rsplit(":", 1)
    out += ["-e", f"KUBERNETES_SERVICE_HOST={host.strip('[]')}", "-e",
            f"KUBERNETES_SERVICE_PORT={port}"]
    for e in c.get("env", []):
        if "value" in e:
            out += ["-e", f"{e['name']}={e['value']}"]
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            out += ["-e", f"{e['name']}={a.node}"]
        else:
            fail(f"env {e['name']} not reproduced")

    for m in c.get("volumeMounts", []):
        v = volumes[m["name"]]
        ro = ":ro" if m.get("readOnly") else ""
        if "hostPath" in v:
            path = v["hostPath"]["path"]
            src = path if path in a.shared else os.path.join(a.host_root, path.lstrip("/"))
            if v["hostPath"].get("type") == "DirectoryOrCreate":
                os.makedirs(src, mode=0o755, exist_ok=True)
        elif "configMap" in v:
            src = os.path.join(a.work, "configmap-" + m["name"])
            os.makedirs(src, exist_ok=True)
            for key, text in configmaps[v["configMap"]["name"]]["data"].items():
                with open(os.path.join(src, key), "w") as f:
                    f.write(text)
        else:
            fail(f"volume {m['name']} not reproduced")
        out += ["-v", f"{src}:{m['mountPath']}{ro}"]
    if pod.get("automountServiceAccountToken", True):
        out += ["-v", f"{a.service_account}:{SA_PATH}:ro"]

    out += ["--entrypoint", c["command"][0], a.image] + c["command"][1:] + c.get("args", [])
    out += extra
    sys.stdout.write("\0".join(out) + "\0")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A CRI client for the end-to-end tests: the pod-sandbox calls the kubelet makes, over gRPC.

    cri.py --socket SOCK --gen DIR version
    cri.py --socket SOCK --gen DIR run NAME UID NAMESPACE CGROUP_PARENT   prints the sandbox ID
    cri.py --socket SOCK --gen DIR status ID   prints state, ip, additional_ips, pid, netns (JSON)
    cri.py --socket SOCK --gen DIR stop ID
    cri.py --socket SOCK --gen DIR remove ID

DIR holds runtime_v1_pb2.py and runtime_v1_pb2_grpc.py, compiled from runtime_v1.proto with
grpc_tools.protoc. Every call has a deadline; a failed call prints the gRPC status on stderr and
exits 1.
"""

import argparse
import json
import sys

# A sandbox starts a container and runs the CNI ADD; the rest are quick.
RUN_TIMEOUT_S = 60
CALL_TIMEOUT_S = 30


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True, help="the CRI endpoint (a unix socket path)")
    parser.add_argument("--gen", required=True, help="where the compiled protobuf modules are")
    parser.add_argument("call", choices=["version", "run", "status", "stop", "remove"])
    parser.add_argument("args", nargs="*")
    opts = parser.parse_args()

    sys.path.insert(0, opts.gen)
    import grpc
    import runtime_v1_pb2 as api
    import runtime_v1_pb2_grpc as api_grpc

    want = {"version": 0, "run": 4, "status": 1, "stop": 1, "remove": 1}[opts.call]
    if len(opts.args) != want:
        parser.error(f"{opts.call} takes {want} arguments, got {len(opts.args)}")

    channel = grpc.insecure_channel("unix://" + opts.socket)
    rt = api_grpc.RuntimeServiceStub(channel)
    try:
        if opts.call == "version":
            # Waits (within the deadline) for a containerd that is still starting.
            r = rt.Version(api.VersionRequest(version="v1"), timeout=CALL_TIMEOUT_S,
                           wait_for_ready=True)
            print(json.dumps({"runtime_name": r.runtime_name,
                              "runtime_version": r.runtime_version,
                              "runtime_api_version": r.runtime_api_version}))
        elif opts.call == "run":
            name, uid, namespace, cgroup_parent = opts.args
            # What the kubelet sends for a pod on the pod network: the pod's identity (containerd
            # passes it on as K8S_POD_* in CNI_ARGS), its cgroup parent, and namespace options
            # asking for a pod network namespace.
            config = api.PodSandboxConfig(
                metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace=namespace),
                hostname=name,
                linux=api.LinuxPodSandboxConfig(
                    cgroup_parent=cgroup_parent,
                    security_context=api.LinuxSandboxSecurityContext(
                        namespace_options=api.NamespaceOption(
                            network=api.POD, pid=api.CONTAINER, ipc=api.POD))))
            r = rt.RunPodSandbox(api.RunPodSandboxRequest(config=config), timeout=RUN_TIMEOUT_S)
            print(r.pod_sandbox_id)
        elif opts.call == "status":
            r = rt.PodSandboxStatus(
                api.PodSandboxStatusRequest(pod_sandbox_id=opts.args[0], verbose=True),
                timeout=CALL_TIMEOUT_S)
            out = {
                "state": api.PodSandboxState.Name(r.status.state),
                "ip": r.status.network.ip,
                "additional_ips": [p.ip for p in r.status.network.additional_ips],
            }
            # containerd's verbose info: the sandbox's process and its network namespace path.
            info = json.loads(r.info.get("info", "{}"))
            out["pid"] = info.get("pid", 0)
            spec_ns = info.get("runtimeSpec", {}).get("linux", {}).get("namespaces", [])
            out["netns"] = next((n.get("path", "") for n in spec_ns if n.get("type") == "network"),
                                "")
            print(json.dumps(out))
        elif opts.call == "stop":
            rt.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=opts.args[0]),
                              timeout=CALL_TIMEOUT_S)
        elif opts.call == "remove":
            rt.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=opts.args[0]),
                                timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as e:
        print(f"cri.py {opts.call}: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

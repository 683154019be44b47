#!/usr/bin/python3
"""The Kubernetes manifests in conf/kubernetes keep their least-privilege properties.

  kubernetes_test.py [-v]      (DUALSTACK_SOURCE_DIR, DUALSTACK_BIN_DIR from ctest)

Checks conf/kubernetes/daemonset.yaml and rbac.yaml as the API server would read them: both
containers run from the image scripts/image.sh builds, with every capability dropped but those
each one uses, no privilege escalation, the default seccomp profile and a read-only root; host
paths only where a container writes; RBAC no wider than get/list/watch on nodes and a token for
its own service account; every flag in the containers' args is one the binary knows.
"""
import json
import os
import subprocess
import unittest

import yaml

SOURCE = os.environ.get("DUALSTACK_SOURCE_DIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("DUALSTACK_BIN_DIR", os.path.join(SOURCE, "build", "bin"))
CONF = os.path.join(SOURCE, "conf", "kubernetes")

# Which host paths each container may mount, and why: it writes there.
HOST_PATHS = {
    "install": {"/opt/cni/bin", "/etc/cni/net.d"},  # the plugins, the conflist and kubeconfig
    # The plugin's kubeconfig; the masquerade lock; the operator CLI.
    "agent": {"/etc/cni/net.d", "/run/dualstack-cni", "/var/lib/cni"},
}
CAPABILITIES = {"install": [], "agent": ["NET_ADMIN"]}


def load(name):
    with open(os.path.join(CONF, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


class DaemonSet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        docs = load("daemonset.yaml")
        cls.ds = find(docs, "DaemonSet")[0]
        cls.configmaps = find(docs, "ConfigMap")
        cls.pod = cls.ds["spec"]["template"]["spec"]
        cls.containers = {c["name"]: c for c in cls.pod.get("initContainers", [])
                          + cls.pod["containers"]}

    def test_installer_is_an_init_container_and_the_agent_the_main_one(self):
        self.assertEqual([c["name"] for c in self.pod["initContainers"]], ["install"])
        self.assertEqual([c["name"] for c in self.pod["containers"]], ["agent"])
        install = self.containers["install"]
        self.assertEqual(install["command"], ["/usr/sbin/dualstack-install"])
        self.assertIn("--once", install["args"])
        self.assertEqual(self.containers["agent"]["command"], ["/usr/sbin/dualstack-agent"])

    def test_image_is_the_one_image_sh_builds(self):
        images = {c["image"] for c in self.containers.values()}
        self.assertEqual(len(images), 1, images)
        image = images.pop()
        self.assertRegex(image, r"^localhost/dualstack-cni:[A-Za-z0-9_][A-Za-z0-9_.-]*$")
        for c in self.containers.values():
            # An image loaded into containerd, never pulled: "Always" would fail.
            self.assertEqual(c.get("imagePullPolicy"), "IfNotPresent", c["name"])

    def test_pod_runs_on_the_host_network_and_nowhere_else_of_the_host(self):
        self.assertIs(self.pod.get("hostNetwork"), True)
        for key in ("hostPID", "hostIPC"):
            self.assertFalse(self.pod.get(key, False), key)
        self.assertEqual(self.pod["serviceAccountName"], "dualstack-cni")

    def test_least_privilege_per_container(self):
        pod_seccomp = self.pod.get("securityContext", {}).get("seccompProfile", {})
        for name, c in self.containers.items():
            with self.subTest(container=name):
                sc = c.get("securityContext", {})
                self.assertFalse(sc.get("privileged", False))
                self.assertIs(sc.get("allowPrivilegeEscalation"), False)
                self.assertIs(sc.get("readOnlyRootFilesystem"), True)
                seccomp = sc.get("seccompProfile", pod_seccomp)
                self.assertEqual(seccomp.get("type"), "RuntimeDefault")
                caps = sc.get("capabilities", {})
                self.assertEqual(caps.get("drop"), ["ALL"])
                self.assertEqual(sorted(caps.get("add", [])), CAPABILITIES[name])
                self.assertNotIn("procMount", sc)

    def test_host_paths_only_where_written(self):
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        for name, c in self.containers.items():
            with self.subTest(container=name):
                mounted = set()
                for m in c.get("volumeMounts", []):
                    v = volumes[m["name"]]
                    if "hostPath" in v:
                        self.assertFalse(m.get("readOnly", False),
                                         f"{m['name']}: a host path mounted but never written")
                        mounted.add(v["hostPath"]["path"])
                    else:
                        self.assertTrue({"configMap", "secret", "projected"} & v.keys(), v)
                self.assertLessEqual(mounted, HOST_PATHS[name])
        unused = {n for n, v in volumes.items() if "hostPath" in v} - {
            m["name"] for c in self.containers.values() for m in c.get("volumeMounts", [])}
        self.assertEqual(unused, set())

    def test_agent_keeps_the_plugin_kubeconfig_with_its_own_service_account(self):
        args = self.containers["agent"]["args"]
        self.assertIn("--token-service-account=kube-system/dualstack-cni", args)
        self.assertIn("--plugin-kubeconfig=/host/etc/cni/net.d/dualstack-cni.kubeconfig", args)
        # /healthz and /metrics on the host's loopback only.
        metrics = [a for a in args if a.startswith("--metrics-address=")]
        self.assertEqual(len(metrics), 1)
        self.assertTrue(metrics[0].split("=", 1)[1].startswith("127.0.0.1:"), metrics)
        probe = self.containers["agent"]["livenessProbe"]["httpGet"]
        self.assertEqual(f"127.0.0.1:{probe['port']}", metrics[0].split("=", 1)[1])

    def test_node_name_from_the_downward_api(self):
        for name, var in (("install", "K8S_NODE_NAME"), ("agent", "NODE_NAME")):
            env = {e["name"]: e for e in self.containers[name].get("env", [])}
            self.assertEqual(env[var]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName")

    def test_conflist_template_is_a_dualstack_network(self):
        data = self.configmaps[0]["data"]
        conflist = json.loads(data["10-dualstack.conflist"])
        self.assertEqual(conflist["plugins"][0]["type"], "dualstack")
        self.assertEqual(conflist["plugins"][0]["ipam"]["type"], "dualstack-ipam")
        # The agent's default --cni-network is "dualstack": its masquerade sets meet these rules.
        self.assertEqual(conflist["name"], "dualstack")
        mounts = {m["mountPath"] for m in self.containers["install"]["volumeMounts"]}
        template = [a.split("=", 1)[1] for a in self.containers["install"]["args"]
                    if a.startswith("--conflist-template=")]
        self.assertEqual(len(template), 1)
        self.assertIn(os.path.dirname(template[0]), mounts)

    def test_every_flag_is_known_to_its_binary(self):
        for name, c in self.containers.items():
            binary = os.path.join(BIN, os.path.basename(c["command"][0]))
            with self.subTest(container=name):
                self.assertTrue(os.access(binary, os.X_OK), f"{binary} is not built")
                out = subprocess.run([binary, "--help"], capture_output=True, text=True,
                                     timeout=10)
                self.assertEqual(out.returncode, 0, out.stderr)
                for arg in c.get("args", []):
                    flag = arg.split("=", 1)[0]
                    self.assertIn(flag, out.stdout, f"{binary} --help does not know {flag}")


class Rbac(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = load("rbac.yaml")

    def test_no_long_lived_token(self):
        self.assertEqual(find(self.docs, "Secret"), [])

    def test_cluster_role_reads_nodes_only(self):
        (role,) = find(self.docs, "ClusterRole")
        self.assertEqual(len(role["rules"]), 1)
        rule = role["rules"][0]
        self.assertEqual(rule["apiGroups"], [""])
        self.assertEqual(rule["resources"], ["nodes"])
        self.assertEqual(sorted(rule["verbs"]), ["get", "list", "watch"])
        self.assertNotIn("resourceNames", rule)

    def test_token_only_for_its_own_service_account(self):
        (sa,) = find(self.docs, "ServiceAccount")
        (role,) = find(self.docs, "Role")
        self.assertEqual(role["metadata"]["namespace"], sa["metadata"]["namespace"])
        self.assertEqual(role["rules"], [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                                          "resourceNames": [sa["metadata"]["name"]],
                                          "verbs": ["create"]}])

    def test_bindings_name_the_service_account_and_the_roles(self):
        (sa,) = find(self.docs, "ServiceAccount")
        subject = {"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                   "namespace": sa["metadata"]["namespace"]}
        for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
            (binding,) = find(self.docs, kind)
            (role,) = find(self.docs, role_kind)
            self.assertEqual(binding["subjects"], [subject])
            self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                                  "kind": role_kind,
                                                  "name": role["metadata"]["name"]})


if __name__ == "__main__":
    unittest.main()

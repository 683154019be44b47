#include "dualstack/plugin/plugin.hpp"

namespace dualstack::plugin {

std::string_view usage() {
  return R"(Usage: dualstack   (run by a container runtime, with CNI_COMMAND set)
  or:  dualstack --help | --version

dualstack is a CNI plugin: it gives a pod a veth pair with one IPv4 and one IPv6 address, both
families routed on the pod end and on the node end. Container runtimes (containerd, CRI-O,
podman) and cnitool run it with the CNI_* variables below set and the network configuration on
stdin; it prints the CNI result (ADD) or a CNI error as JSON on stdout, and logs to stderr.

Verbs (CNI_COMMAND):
  ADD      runs the IPAM plugin named by ipam.type (dualstack-ipam, host-local) for the
           addresses, creates the veth pair (the pod end named CNI_IFNAME inside CNI_NETNS),
           adds the addresses and routes; any failure undoes everything
  DEL      removes the veth, the masquerade entry and the addresses; succeeds when any of them
           is already gone, and without the pod's namespace (CNI_NETNS empty)
  CHECK    verifies the interface, addresses and routes of a prevResult, and the allocation
  GC       removes the attachments of the network not in cni.dev/valid-attachments (a missing
           list means none is valid, as libcni sends it)
  STATUS   fails with code 50 when no ADD could be served
  VERSION  the CNI versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0

Environment:
  CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH
                 as the CNI specification defines them; CNI_PATH is searched for the IPAM plugin

Configuration (stdin, one plugin of a conflist):
  mtu, ipMasq, ipMasqExcept, logFile, logLevel, ipam (passed to the IPAM plugin whole)

Exit status: 0 on success; 1 with a CNI error on stdout (its "code" says which).
Run without CNI_COMMAND and without --help or --version, it prints this text and exits 2.

Documentation: docs/configuration.md and docs/runtimes.md in the dualstack-cni sources.
)";
}

}  // namespace dualstack::plugin

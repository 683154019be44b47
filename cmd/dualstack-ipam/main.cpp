#include "dualstack/cni/skel.hpp"
#include "dualstack/ipam/commands.hpp"
#include "dualstack/ops/ipam_cli.hpp"

int main(int argc, char** argv) {
  auto handlers = dualstack::ipam::handlers();
  handlers.interactive = dualstack::ops::ipamCli;
  return dualstack::cni::pluginMain(
      argc, argv,
      "dualstack-ipam: CNI IPAM plugin handing out one IPv4 and one IPv6 address per attachment "
      "from the node's podCIDRs",
      handlers);
}

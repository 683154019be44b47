#include "dualstack/cni/skel.hpp"
#include "dualstack/ipam/commands.hpp"

int main(int argc, char** argv) {
  return dualstack::cni::pluginMain(
      argc, argv,
      "dualstack-ipam: CNI IPAM plugin handing out one IPv4 and one IPv6 address per attachment "
      "from the node's podCIDRs",
      dualstack::ipam::handlers());
}

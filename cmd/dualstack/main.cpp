// One program installed under two names: `dualstack`, the interface plugin, and `dualstack-ipam`,
// its IPAM plugin and the store's operator commands. The name it runs under picks which.
#include <string_view>

#include "dualstack/cni/skel.hpp"
#include "dualstack/ipam/commands.hpp"
#include "dualstack/ops/ipam_cli.hpp"
#include "dualstack/plugin/plugin.hpp"

int main(int argc, char** argv) {
  const std::string_view arg0 = argc > 0 ? argv[0] : "";
  if (arg0.substr(arg0.rfind('/') + 1) == dualstack::ipam::kPluginName) {
    auto handlers = dualstack::ipam::handlers();
    handlers.interactive = dualstack::ops::ipamCli;
    return dualstack::cni::pluginMain(
        argc, argv,
        "dualstack-ipam: CNI IPAM plugin handing out one IPv4 and one IPv6 address per attachment "
        "from the node's podCIDRs",
        handlers);
  }
  return dualstack::cni::pluginMain(argc, argv, dualstack::plugin::usage(),
                                    dualstack::plugin::handlers());
}

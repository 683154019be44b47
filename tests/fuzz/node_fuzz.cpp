// Node objects (`kubectl get node -o json`, the node.file source): k8s::parseNode as the file
// source calls it, then the range sets derived from its podCIDRs and the preferred family of its
// addresses.
#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/ipam/config.hpp"
#include "dualstack/k8s/node.hpp"
#include "fuzz.hpp"

using namespace dualstack;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::tolerateCniErrors([&] {
    const nlohmann::json node = cni::parseJson(fuzz::asText(data, size), "node file");
    const k8s::Node info =
        k8s::parseNode(node, "", k8s::NodeLayout::Object, cni::Code::InvalidConfig);
    ipam::requireUsable(info, "node file /fuzz/node.json: ");
    (void)ipam::preferredFamily(info.addresses);
    const auto sets = ipam::rangeSetsForNode(info, "node file /fuzz/node.json: ");
    // At most one range set per family, each non-empty.
    if (sets.size() > 2) std::abort();
    for (const auto& s : sets) {
      if (s.ranges.empty()) std::abort();
    }
  });
  return 0;
}

// Node objects (`kubectl get node -o json`, the node.file source): ipam::parseNodeObject, then
// the range sets derived from its podCIDRs and the preferred family of its addresses.
#include "dualstack/cni/json.hpp"
#include "dualstack/ipam/config.hpp"
#include "fuzz.hpp"

using namespace dualstack;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::tolerateCniErrors([&] {
    const nlohmann::json node = cni::parseJson(fuzz::asText(data, size), "node file");
    const ipam::NodeInfo info = ipam::parseNodeObject(node, "node file /fuzz/node.json");
    (void)ipam::preferredFamily(info.addresses);
    const auto sets = ipam::rangeSetsForNode(info);
    // At most one range set per family, each non-empty.
    if (sets.size() > 2) std::abort();
    for (const auto& s : sets) {
      if (s.ranges.empty()) std::abort();
    }
  });
  return 0;
}

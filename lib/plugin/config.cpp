#include "dualstack/plugin/config.hpp"

#include "dualstack/cni/json.hpp"

namespace dualstack::plugin {

using cni::Code;
using cni::Error;

PluginConfig parsePluginConfig(const cni::NetConf& conf) {
  PluginConfig pc;
  if (conf.ipam().is_null()) {
    throw Error(Code::InvalidConfig, "ipam is missing: dualstack needs an IPAM plugin "
                                     "(e.g. \"ipam\": {\"type\": \"dualstack-ipam\", ...})");
  }
  pc.ipamType = cni::reqString(conf.ipam(), "type", "ipam");
  if (pc.ipamType.empty() || pc.ipamType.find('/') != std::string::npos || pc.ipamType == "." ||
      pc.ipamType == "..") {
    throw Error(Code::InvalidConfig, "ipam.type \"" + pc.ipamType.substr(0, 64) +
                                         "\" must be a plugin name on CNI_PATH, not a path");
  }
  if (auto mtu = cni::optInt(conf.raw, "mtu", "", 0, 65535); mtu && *mtu != 0) {
    // 1280 is the IPv6 minimum; a smaller MTU would make the pod's IPv6 address unusable.
    if (*mtu < 1280) {
      throw Error(Code::InvalidConfig,
                  "mtu: " + std::to_string(*mtu) + " is below 1280, the minimum IPv6 MTU");
    }
    pc.mtu = static_cast<int>(*mtu);
  }
  pc.ipMasq = cni::optBool(conf.raw, "ipMasq", "").value_or(false);
  if (const auto* except = cni::optArray(conf.raw, "ipMasqExcept", "")) {
    std::size_t i = 0;
    for (const auto& item : *except) {
      const std::string field = "ipMasqExcept[" + std::to_string(i++) + "]";
      if (!item.is_string()) {
        throw Error(Code::InvalidConfig, field + ": expected a CIDR string, got " +
                                             std::string(cni::typeName(item)));
      }
      auto p = ip::Prefix::parse(item.get<std::string>());
      if (!p) {
        throw Error(Code::InvalidConfig, field + ": \"" + item.get<std::string>().substr(0, 64) +
                                             "\" is not a CIDR");
      }
      if (p->hostBitsSet()) {
        throw Error(Code::InvalidConfig, field + ": " + p->str() + " has host bits set (did you mean " +
                                             p->network().str() + "?)");
      }
      pc.ipMasqExcept.push_back(*p);
    }
  }
  return pc;
}

}  // namespace dualstack::plugin

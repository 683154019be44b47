#include "dualstack/plugin/config.hpp"

#include <charconv>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/ipam/config.hpp"
#include "dualstack/plugin/hostveth.hpp"

namespace dualstack::plugin {

using cni::Code;
using cni::Error;

namespace {

// The pod end's MAC address requested by the runtime (CNI_ARGS MAC=, as podman sends it, or
// runtimeConfig.mac); nullopt: the kernel picks a random one.
std::optional<std::array<std::uint8_t, 6>> requestedMac(const cni::Env& env,
                                                        const cni::NetConf& conf) {
  std::optional<std::string> text = env.arg("MAC");
  std::string source = "CNI_ARGS MAC";
  Code code = Code::InvalidEnv;  // a bad CNI_ARGS value is an environment error
  if (const auto* m = cni::member(conf.runtimeConfig(), "mac", "runtimeConfig")) {
    if (!m->is_string()) {
      throw Error(Code::InvalidConfig,
                  "runtimeConfig.mac: expected a string, got " + std::string(cni::typeName(*m)));
    }
    text = m->get<std::string>();
    source = "runtimeConfig.mac";
    code = Code::InvalidConfig;
  }
  if (!text) return std::nullopt;
  std::array<std::uint8_t, 6> mac{};
  // Two hex digits per byte and nothing else: no sign, no blank.
  bool ok = text->size() == 17;
  for (std::size_t i = 0; ok && i < mac.size(); ++i) {
    const char* byte = text->data() + 3 * i;
    ok = std::from_chars(byte, byte + 2, mac[i], 16).ptr == byte + 2 &&
         (i + 1 == mac.size() || byte[2] == ':');
  }
  if (!ok) {
    throw Error(
        code, source + " \"" + text->substr(0, 32) + "\" is not a MAC address (aa:bb:cc:dd:ee:ff)");
  }
  if ((mac[0] & 1) != 0) {
    throw Error(code, source + " " + *text + " is a multicast address");
  }
  return mac;
}

}  // namespace

PluginConfig parsePluginConfig(const cni::Env& env, const cni::NetConf& conf) {
  PluginConfig pc;
  if (conf.ipam().is_null()) {
    throw Error(Code::InvalidConfig,
                "ipam is missing: dualstack needs an IPAM plugin "
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
        throw Error(Code::InvalidConfig,
                    field + ": expected a CIDR string, got " + std::string(cni::typeName(item)));
      }
      auto p = ip::Prefix::parse(item.get<std::string>());
      if (!p) {
        throw Error(Code::InvalidConfig,
                    field + ": \"" + item.get<std::string>().substr(0, 64) + "\" is not a CIDR");
      }
      if (p->hostBitsSet()) {
        throw Error(Code::InvalidConfig, field + ": " + p->str() +
                                             " has host bits set (did you mean " +
                                             p->network().str() + "?)");
      }
      pc.ipMasqExcept.push_back(*p);
    }
  }
  pc.mac = requestedMac(env, conf);
  if (pc.ipamType == "dualstack-ipam") {
    // Parsing reads no file: the node source is never loaded here.
    (void)ipam::parseIpamConfig(conf, env, ipam::Scope::Store);
  }
  pc.store = storeTag(
      cni::optString(conf.ipam(), "dataDir", "ipam").value_or(std::string(ipam::kDefaultDataDir)));
  return pc;
}

}  // namespace dualstack::plugin

// Network configs as a runtime passes them on stdin: cni::parseNetConf for every verb, then the
// option parsers of both plugins (dualstack's own options, logFile/logLevel, the ipam section in
// each scope) and, for inline node data or host-local ranges, the range sets. A conflist is also
// split into its plugins the way libcni does (name and cniVersion copied into each).
#include <array>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/cni/log.hpp"
#include "dualstack/ipam/config.hpp"
#include "dualstack/plugin/config.hpp"
#include "fuzz.hpp"

namespace {

using namespace dualstack;

cni::Env fixedEnv() {
  cni::Env env;
  env.command = cni::Command::Add;
  env.containerId = "fuzz";
  env.netns = "/run/netns/fuzz";
  env.ifname = "eth0";
  env.path = "/nonexistent";
  return env;
}

void parseAll(std::string_view text) {
  static const cni::Env env = fixedEnv();
  constexpr std::array commands = {cni::Command::Add, cni::Command::Del, cni::Command::Check,
                                   cni::Command::Gc, cni::Command::Status};
  for (const auto command : commands) {
    fuzz::tolerateCniErrors([&] {
      const cni::NetConf conf = cni::parseNetConf(text, command);
      fuzz::tolerateCniErrors([&] { (void)cni::parseLogConfig(conf.raw); });
      fuzz::tolerateCniErrors([&] { (void)plugin::parsePluginConfig(env, conf); });
      fuzz::tolerateCniErrors([&] { (void)ipam::parseIpamConfig(conf, env, ipam::Scope::Store); });
      fuzz::tolerateCniErrors([&] { (void)ipam::parseIpamConfig(conf, env, ipam::Scope::Check); });
      fuzz::tolerateCniErrors([&] {
        const ipam::IpamConfig cfg = ipam::parseIpamConfig(conf, env, ipam::Scope::Allocate);
        // Only sources that need no I/O: inline node data, host-local ranges.
        if (!cfg.node || cfg.node->describe() == "ipam.node") (void)ipam::rangeSets(cfg);
      });
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::asText(data, size);
  parseAll(text);
  // A conflist: each plugin gets the list's name and cniVersion, as libcni builds it. Parsed
  // with the plugins' own bounded parser: copying a plugin nested deeper would overflow here.
  nlohmann::json list;
  try {
    list = cni::parseJson(text, "conflist");
  } catch (const cni::Error&) {
    return 0;
  }
  if (list.is_object() && list.contains("plugins") && list["plugins"].is_array()) {
    for (const auto& p : list["plugins"]) {
      if (!p.is_object()) continue;
      nlohmann::json conf = p;
      if (list.contains("name")) conf["name"] = list["name"];
      if (list.contains("cniVersion")) conf["cniVersion"] = list["cniVersion"];
      if (list.contains("cniVersions")) conf["cniVersions"] = list["cniVersions"];
      parseAll(conf.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  }
  return 0;
}

// The CNI_* environment: the input is NUL-separated NAME=VALUE entries handed to cni::parseEnv
// (CNI_ARGS among them), plus CNI_ARGS parsed on its own. Properties: every pair has a non-empty
// key and neither key nor value contains ';'; an accepted container ID and ifname pass their
// validators.
#include <map>
#include <optional>
#include <string>

#include "dualstack/cni/env.hpp"
#include "dualstack/cni/log.hpp"
#include "fuzz.hpp"

using namespace dualstack;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::asText(data, size);

  fuzz::tolerateCniErrors([&] {
    for (const auto& [k, v] : cni::parseCniArgs(text)) {
      if (k.empty() || k.find(';') != std::string::npos || v.find(';') != std::string::npos) {
        std::abort();
      }
    }
  });
  (void)cni::logValue(text, 64);

  std::map<std::string, std::string, std::less<>> vars;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\0', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view entry = text.substr(pos, end - pos);
    const auto eq = entry.find('=');
    if (eq != std::string_view::npos) vars[std::string(entry.substr(0, eq))] = entry.substr(eq + 1);
    pos = end + 1;
  }
  fuzz::tolerateCniErrors([&] {
    const cni::Env env = cni::parseEnv([&](const char* name) -> std::optional<std::string> {
      const auto it = vars.find(std::string_view(name));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    });
    const bool perAttachment = env.command == cni::Command::Add ||
                               env.command == cni::Command::Del ||
                               env.command == cni::Command::Check;
    if (perAttachment &&
        (!cni::validContainerId(env.containerId) || !cni::validIfname(env.ifname))) {
      std::abort();
    }
    for (const auto& [k, v] : env.argPairs) {
      if (env.arg(k) == std::nullopt) std::abort();
    }
  });
  return 0;
}

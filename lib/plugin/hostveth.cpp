#include "dualstack/plugin/hostveth.hpp"

#include <cstdint>

namespace dualstack::plugin {

namespace {

// FNV-1a, 64 bit: stable across builds and machines, which a std::hash is not.
std::uint64_t fnv1a(std::uint64_t h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  // A separator byte that cannot occur in any of the fields keeps ("ab","c") != ("a","bc").
  h ^= 0xff;
  h *= 0x100000001b3ULL;
  return h;
}

}  // namespace

std::string hostVethName(std::string_view network, const cni::Attachment& a, int candidate) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  h = fnv1a(h, network);
  h = fnv1a(h, a.containerId);
  h = fnv1a(h, a.ifname);
  h = fnv1a(h, std::string(1, static_cast<char>('0' + candidate)));
  static const char* hex = "0123456789abcdef";
  std::string name = "ds";
  for (int i = 0; i < 13; ++i) {
    name += hex[(h >> (4 * i)) & 0xf];
  }
  return name;
}

std::string hostVethAlias(std::string_view network, const cni::Attachment& a) {
  return "dualstack:" + std::string(network) + ":" + a.ifname + ":" + a.containerId;
}

std::optional<cni::Attachment> parseHostVethAlias(std::string_view network,
                                                  std::string_view alias) {
  const std::string prefix = "dualstack:" + std::string(network) + ":";
  if (alias.substr(0, prefix.size()) != prefix) return std::nullopt;
  alias.remove_prefix(prefix.size());
  // The ifname cannot contain ':' (validated), so the first ':' ends it.
  const auto colon = alias.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= alias.size()) return std::nullopt;
  return cni::Attachment{std::string(alias.substr(colon + 1)), std::string(alias.substr(0, colon))};
}

}  // namespace dualstack::plugin

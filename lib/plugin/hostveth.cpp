#include "dualstack/plugin/hostveth.hpp"

#include <algorithm>
#include <cstdint>

#include "dualstack/sys/hash.hpp"

namespace dualstack::plugin {

namespace {

// FNV-1a 64 of one field, then a separator byte that cannot occur in any field, so that
// ("ab","c") and ("a","bc") differ.
std::uint64_t fnv1a(std::uint64_t h, std::string_view s) {
  return sys::fnv1a64(std::string_view("\xff", 1), sys::fnv1a64(s, h));
}

}  // namespace

std::string hostVethName(std::string_view network, const cni::Attachment& a, int candidate) {
  std::uint64_t h = sys::kFnv64Offset;
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

std::string storeTag(std::string_view dataDir) {
  std::string normal;
  std::size_t i = 0;
  while (i < dataDir.size()) {
    if (dataDir[i] == '/') {
      ++i;
      continue;
    }
    const std::size_t end = std::min(dataDir.find('/', i), dataDir.size());
    const std::string_view part = dataDir.substr(i, end - i);
    if (part != ".") normal += "/" + std::string(part);
    i = end;
  }
  if (normal.empty()) normal = "/";
  const std::uint64_t h = fnv1a(sys::kFnv64Offset, normal);
  static const char* hex = "0123456789abcdef";
  std::string tag;
  for (int d = 0; d < 12; ++d) tag += hex[(h >> (4 * d)) & 0xf];
  return tag;
}

std::string hostVethAlias(std::string_view network, std::string_view store,
                          const cni::Attachment& a) {
  return "dualstack:" + std::string(network) + "@" + std::string(store) + ":" + a.ifname + ":" +
         a.containerId;
}

std::string legacyHostVethAlias(std::string_view network, const cni::Attachment& a) {
  return "dualstack:" + std::string(network) + ":" + a.ifname + ":" + a.containerId;
}

std::optional<cni::Attachment> parseHostVethAlias(std::string_view network, std::string_view store,
                                                  std::string_view alias) {
  // Network names cannot contain '@' or ':' (validated), so the prefix is unambiguous.
  const std::string tagged = "dualstack:" + std::string(network) + "@" + std::string(store) + ":";
  const std::string legacy = "dualstack:" + std::string(network) + ":";
  if (alias.substr(0, tagged.size()) == tagged) {
    alias.remove_prefix(tagged.size());
  } else if (alias.substr(0, legacy.size()) == legacy) {
    alias.remove_prefix(legacy.size());
  } else {
    return std::nullopt;
  }
  // The ifname cannot contain ':' (validated), so the first ':' ends it.
  const auto colon = alias.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= alias.size())
    return std::nullopt;
  return cni::Attachment{std::string(alias.substr(colon + 1)), std::string(alias.substr(0, colon))};
}

}  // namespace dualstack::plugin

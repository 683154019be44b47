#include "dualstack/ipam/store.hpp"

#include <algorithm>

#include "dualstack/cni/env.hpp"

namespace dualstack::ipam {

namespace {
constexpr std::string_view kLineBreak = "\r\n";  // host-local's separator, also on Linux
constexpr std::string_view kSpace = " \t\r\n\v\f";

// The container ID alphabet of the CNI spec, at any length: host-local never capped it.
bool plausibleContainerId(std::string_view id) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (id.empty() || !alnum(id.front())) return false;
  return std::all_of(id.begin(), id.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}
}  // namespace

std::string ownerFileContent(const cni::Attachment& a) {
  return a.containerId + std::string(kLineBreak) + a.ifname;
}

std::optional<Owner> parseOwnerFile(std::string_view content) {
  const auto first = content.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return std::nullopt;
  content = content.substr(first, content.find_last_not_of(kSpace) - first + 1);
  const auto sep = content.find(kLineBreak);
  Owner o;
  if (sep == std::string_view::npos) {
    o.containerId = std::string(content);
  } else {
    o.containerId = std::string(content.substr(0, sep));
    o.ifname = std::string(content.substr(sep + kLineBreak.size()));
    if (!cni::validIfname(o.ifname)) return std::nullopt;
  }
  // Garbage (a torn write, a file planted by someone) names nobody: the address stays taken
  // until GC, and the content never becomes a file name in the index.
  if (!plausibleContainerId(o.containerId)) return std::nullopt;
  return o;
}

}  // namespace dualstack::ipam

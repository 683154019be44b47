#include "dualstack/ipam/store.hpp"

namespace dualstack::ipam {

namespace {
constexpr std::string_view kLineBreak = "\r\n";  // host-local's separator, also on Linux
constexpr std::string_view kSpace = " \t\r\n\v\f";
}  // namespace

std::string ownerFileContent(const cni::Attachment& a) {
  return a.containerId + std::string(kLineBreak) + a.ifname;
}

std::optional<Owner> parseOwnerFile(std::string_view content) {
  const auto first = content.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return std::nullopt;
  content = content.substr(first, content.find_last_not_of(kSpace) - first + 1);
  const auto sep = content.find(kLineBreak);
  if (sep == std::string_view::npos) return Owner{std::string(content), ""};
  Owner o{std::string(content.substr(0, sep)),
          std::string(content.substr(sep + kLineBreak.size()))};
  if (o.containerId.empty() || o.ifname.empty()) return std::nullopt;
  return o;
}

}  // namespace dualstack::ipam

#include "dualstack/k8s/names.hpp"

namespace dualstack::k8s {

bool validDnsLabel(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return name.front() != '-' && name.back() != '-';
}

bool validDnsSubdomain(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (std::size_t start = 0;;) {
    const std::size_t dot = name.find('.', start);
    if (!validDnsLabel(name.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::optional<ServiceAccountRef> parseServiceAccount(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  ServiceAccountRef ref{std::string(text.substr(0, slash)), std::string(text.substr(slash + 1))};
  if (!validDnsLabel(ref.ns) || !validDnsSubdomain(ref.name)) return std::nullopt;
  return ref;
}

}  // namespace dualstack::k8s

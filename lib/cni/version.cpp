#include "dualstack/cni/version.hpp"

#include <algorithm>
#include <array>
#include <string>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"

namespace dualstack::cni {

namespace {

std::array<int, 3> parseVersion(std::string_view v) {
  std::array<int, 3> parts{};
  std::size_t i = 0;
  for (int p = 0; p < 3; ++p) {
    if (i >= v.size() || v[i] < '0' || v[i] > '9') {
      // "1.0" is accepted as "1.0.0", as libcni does; "1.0." is not.
      if (p == 2 && i == v.size() && v[i - 1] != '.') break;
      throw Error(Code::DecodeFailure, "malformed cniVersion \"" + std::string(v) + "\"");
    }
    int n = 0;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') {
      if (n > 100000)
        throw Error(Code::DecodeFailure, "malformed cniVersion \"" + std::string(v) + "\"");
      n = n * 10 + (v[i++] - '0');
    }
    parts[static_cast<std::size_t>(p)] = n;
    if (p < 2 && i < v.size()) {
      if (v[i] != '.')
        throw Error(Code::DecodeFailure, "malformed cniVersion \"" + std::string(v) + "\"");
      ++i;
    }
  }
  if (i != v.size())
    throw Error(Code::DecodeFailure, "malformed cniVersion \"" + std::string(v) + "\"");
  return parts;
}

}  // namespace

bool isSupportedVersion(std::string_view v) {
  return std::find(kSupportedVersions.begin(), kSupportedVersions.end(), v) !=
         kSupportedVersions.end();
}

int compareVersions(std::string_view a, std::string_view b) {
  const auto pa = parseVersion(a);
  const auto pb = parseVersion(b);
  for (std::size_t i = 0; i < 3; ++i) {
    if (pa[i] != pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return 0;
}

nlohmann::json versionInfo(std::string_view requested) {
  nlohmann::json supported = nlohmann::json::array();
  for (auto v : kSupportedVersions) supported.push_back(v);
  const std::string_view answer = isSupportedVersion(requested) ? requested : kLatestVersion;
  return {{"cniVersion", answer}, {"supportedVersions", std::move(supported)}};
}

}  // namespace dualstack::cni

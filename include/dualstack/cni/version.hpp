// CNI specification versions: which we speak, comparisons, which verbs each allows.
#pragma once

#include <array>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace dualstack::cni {

inline constexpr std::array<std::string_view, 5> kSupportedVersions = {"0.3.0", "0.3.1", "0.4.0",
                                                                       "1.0.0", "1.1.0"};
inline constexpr std::string_view kLatestVersion = "1.1.0";

bool isSupportedVersion(std::string_view v);

// Compares two "major.minor.patch" versions; throws Error(DecodeFailure) on malformed text.
int compareVersions(std::string_view a, std::string_view b);
inline bool versionAtLeast(std::string_view v, std::string_view min) {
  return compareVersions(v, min) >= 0;
}

// The VERSION answer for a request carrying `requested` (empty when stdin had none).
nlohmann::json versionInfo(std::string_view requested);

}  // namespace dualstack::cni

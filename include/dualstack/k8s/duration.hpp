// Durations as Kubernetes configs write them: Go's time.ParseDuration form, or seconds.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace dualstack::k8s {

// A number of seconds, or Go's form ("1.5s", "500ms", "1m30s"), at most a year.
// Error(InvalidConfig) naming `field`.
std::chrono::milliseconds parseDuration(const nlohmann::json& value, const std::string& field);

}  // namespace dualstack::k8s

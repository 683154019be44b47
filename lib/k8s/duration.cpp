#include "dualstack/k8s/duration.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/json.hpp"

namespace dualstack::k8s {

using nlohmann::json;
using std::chrono::milliseconds;
using sys::Code;
using sys::Error;

namespace {

// Go's time.ParseDuration units that make sense here, in seconds.
std::optional<double> unitSeconds(std::string_view unit) {
  if (unit == "ns") return 1e-9;
  if (unit == "us" || unit == "\xc2\xb5s") return 1e-6;
  if (unit == "ms") return 1e-3;
  if (unit == "s") return 1.0;
  if (unit == "m") return 60.0;
  if (unit == "h") return 3600.0;
  return std::nullopt;
}

std::optional<double> parseGoDuration(std::string_view s) {
  if (s == "0") return 0.0;
  if (s.empty()) return std::nullopt;
  double total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t numStart = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == numStart) return std::nullopt;
    const std::string num(s.substr(numStart, i - numStart));
    if (num == "." || std::count(num.begin(), num.end(), '.') > 1) return std::nullopt;
    const std::size_t unitStart = i;
    while (i < s.size() && !std::isdigit(static_cast<unsigned char>(s[i])) && s[i] != '.') ++i;
    const auto unit = unitSeconds(s.substr(unitStart, i - unitStart));
    if (!unit) return std::nullopt;
    total += std::strtod(num.c_str(), nullptr) * *unit;
  }
  return total;
}

}  // namespace

milliseconds parseDuration(const json& value, const std::string& field) {
  std::optional<double> seconds;
  if (value.is_number()) {
    seconds = value.get<double>();
  } else if (value.is_string()) {
    seconds = parseGoDuration(value.get<std::string>());
  } else {
    throw Error(Code::InvalidConfig, field +
                                         ": expected a duration (\"2s\", \"500ms\") or a "
                                         "number of seconds, got " +
                                         std::string(sys::typeName(value)));
  }
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0 || *seconds > 366.0 * 86400) {
    throw Error(Code::InvalidConfig, field + ": " + value.dump().substr(0, 64) +
                                         " is not a duration like \"2s\", \"500ms\", \"1m30s\" "
                                         "or a number of seconds (at most a year)");
  }
  // Rounded to the nearest millisecond without std::llround, whose libm would be one more shared
  // library for the dualstack binary to load at every exec (it checks this config too).
  // NOLINTNEXTLINE(bugprone-incorrect-roundings): seconds >= 0, where + 0.5 rounds to nearest
  return milliseconds(static_cast<milliseconds::rep>(*seconds * 1000 + 0.5));
}

}  // namespace dualstack::k8s

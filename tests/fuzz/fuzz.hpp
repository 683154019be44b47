// Shared by the libFuzzer targets. The contract every parser is held to: bad input ends in a
// cni::Error (the CNI error the plugin prints) and nothing else. Any other exception escapes the
// target and libFuzzer reports it as a crash, as it does for sanitizer findings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"

namespace dualstack::fuzz {

inline std::string_view asText(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data),
          size};  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

// What pluginMain does with an Error: the message must be usable in the CNI error JSON.
inline void checkError(const cni::Error& e) {
  if (e.msg().empty()) std::abort();
  const nlohmann::json j = {{"code", static_cast<int>(e.code())}, {"msg", e.msg()}};
  (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Runs f; a cni::Error is an accepted outcome, anything else propagates.
template <typename F>
void tolerateCniErrors(F&& f) {
  try {
    f();
  } catch (const cni::Error& e) {
    checkError(e);
  }
}

}  // namespace dualstack::fuzz

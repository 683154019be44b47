#include "dualstack/sys/env.hpp"

#include <cstdlib>

namespace dualstack::sys {

std::optional<std::string> processEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

}  // namespace dualstack::sys

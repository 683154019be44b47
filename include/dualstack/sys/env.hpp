// How code that reads environment variables is given them: the process environment in the
// binaries, a table in tests.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace dualstack::sys {

// The value of the variable `name`, or nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

// The process environment, as an EnvLookup.
std::optional<std::string> processEnv(const char* name);

}  // namespace dualstack::sys

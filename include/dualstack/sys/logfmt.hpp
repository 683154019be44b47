// The pieces of a logfmt record shared by the plugins' log (cni/log.hpp), the node informer's
// and the agent's: "time=2024-05-01T10:00:00.123Z level=info msg=\"...\" key=value".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dualstack::sys {

enum class LogLevel { Error = 0, Info = 1, Debug = 2 };

// The current time as records carry it: "2024-05-01T10:00:00.123Z" (UTC, milliseconds).
std::string logTimestamp();

// `value` as a logfmt value: bare when it is a plain word, else quoted with \", \\, \n, \t and
// \xNN escapes, and cut at `max` bytes.
std::string logValue(std::string_view value, std::size_t max = 4096);

}  // namespace dualstack::sys

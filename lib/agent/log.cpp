#include "dualstack/agent/log.hpp"

#include <unistd.h>

#include "dualstack/sys/io.hpp"
#include "dualstack/sys/logfmt.hpp"

namespace dualstack::agent {

std::string_view levelName(Level l) {
  switch (l) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warn";
    case Level::Error:
      return "error";
  }
  return "info";
}

bool parseLevel(std::string_view text, Level* out) {
  for (const Level l : {Level::Debug, Level::Info, Level::Warn, Level::Error}) {
    if (text == levelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

Log::Log(Level min, Sink sink) : min_(min), sink_(std::move(sink)) {}

std::string Log::format(std::string_view time, Level l, std::string_view msg,
                        std::initializer_list<Field> fields) {
  std::string line = "time=" + std::string(time) + " level=" + std::string(levelName(l)) +
                     " msg=" + sys::logValue(msg);
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    line += sys::logValue(f.value, 1024);
  }
  return line;
}

void Log::write(Level l, std::string_view msg, std::initializer_list<Field> fields) {
  if (!enabled(l)) return;
  std::string line = format(sys::logTimestamp(), l, msg, fields);
  if (sink_) {
    const std::lock_guard lock(mu_);
    sink_(line);
    return;
  }
  line += '\n';
  // A log line that cannot be written is dropped: there is nowhere to report it.
  (void)sys::writeAll(STDERR_FILENO, line);
}

std::function<void(sys::LogLevel, const std::string&)> Log::adapter(std::string component) {
  return [this, component = std::move(component)](sys::LogLevel level, const std::string& msg) {
    // A failed request is retried: a warning for the agent, not an error.
    const Level l = level == sys::LogLevel::Error  ? Level::Warn
                    : level == sys::LogLevel::Info ? Level::Info
                                                   : Level::Debug;
    write(l, msg, {{"component", component}});
  };
}

}  // namespace dualstack::agent

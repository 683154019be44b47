// The agent's structured log: one logfmt record per line on stderr (or a test's sink),
//
//   time=2024-05-01T10:00:00.123Z level=info msg="route added" node=worker-2 dst=10.244.2.0/24
//   via=192.168.10.6
//
// each written with a single write(2), so records of the agent's threads never interleave.
#pragma once

#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>

#include "dualstack/sys/logfmt.hpp"

namespace dualstack::agent {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
std::string_view levelName(Level l);
// "debug", "info", "warn" or "error"; false for anything else.
bool parseLevel(std::string_view text, Level* out);

struct Field {
  std::string_view key;
  std::string value;
};

class Log {
 public:
  using Sink = std::function<void(std::string_view line)>;

  // Records below `min` are dropped. Without a sink, lines go to stderr.
  explicit Log(Level min = Level::Info, Sink sink = {});

  bool enabled(Level l) const { return l >= min_; }
  void write(Level l, std::string_view msg, std::initializer_list<Field> fields = {});
  void debug(std::string_view msg, std::initializer_list<Field> fields = {}) {
    write(Level::Debug, msg, fields);
  }
  void info(std::string_view msg, std::initializer_list<Field> fields = {}) {
    write(Level::Info, msg, fields);
  }
  void warn(std::string_view msg, std::initializer_list<Field> fields = {}) {
    write(Level::Warn, msg, fields);
  }
  void error(std::string_view msg, std::initializer_list<Field> fields = {}) {
    write(Level::Error, msg, fields);
  }

  // For libraries that log with sys::LogLevel (the informer): error, info, debug map to ours;
  // `component` is added as a field.
  std::function<void(sys::LogLevel, const std::string&)> adapter(std::string component);

  // The record without the trailing newline.
  static std::string format(std::string_view time, Level l, std::string_view msg,
                            std::initializer_list<Field> fields);

 private:
  Level min_;
  Sink sink_;
  std::mutex mu_;  // for the sink only; stderr gets one write per record
};

}  // namespace dualstack::agent

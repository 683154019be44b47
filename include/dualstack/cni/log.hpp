// The operator's log: the `logFile` / `logLevel` options of the network config.
//
//   "logFile": "/var/log/dualstack-cni.log",   absolute path; appended to, created mode 0600
//   "logLevel": "info"                         error | info | debug (default: error)
//
// Each record is one line, written with a single write() on a descriptor opened with O_APPEND,
// so the lines of plugins running in parallel never interleave:
//
//   time=2024-05-01T10:00:00.123Z level=error prog=dualstack pid=4242 cmd=ADD container=abc
//   ifname=eth0 network=dualstack elapsed_ms=3.104 msg="ADD failed (code 7): ..."
//
// Without either option nothing is logged besides today's error line on stderr. With logLevel but
// no logFile, records go to stderr. A log file that cannot be opened never fails the operation:
// a warning goes to stderr and the plugin carries on. Records never contain the raw config, only
// facts chosen for them (messages, addresses, names), so no credential reaches the log.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/env.hpp"
#include "dualstack/cni/error.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/logfmt.hpp"

namespace dualstack::cni {

using sys::LogLevel;
using sys::logTimestamp;
using sys::logValue;

struct LogConfig {
  std::optional<std::string> file;  // logFile
  std::optional<LogLevel> level;    // logLevel
  bool enabled() const { return file.has_value() || level.has_value(); }
};

// The options from the top level of a config. Error(InvalidConfig) naming the field for a wrong
// type, a relative logFile or an unknown logLevel.
LogConfig parseLogConfig(const nlohmann::json& raw);

// What every record of this invocation carries besides its message.
struct LogContext {
  std::string prog;
  std::string command;      // CNI_COMMAND
  std::string containerId;  // CNI_CONTAINERID
  std::string ifname;       // CNI_IFNAME
  std::string network;      // the config's name
};

class Logger {
 public:
  Logger();
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // Opens the file (if any). An unopenable file is reported on stderr and logging stays off.
  void configure(const LogConfig& cfg);
  bool configured() const { return configured_; }
  LogContext& context() { return ctx_; }

  bool enabled(LogLevel level) const;
  void log(LogLevel level, std::string_view msg);
  void error(std::string_view msg) { log(LogLevel::Error, msg); }
  void info(std::string_view msg) { log(LogLevel::Info, msg); }
  void debug(std::string_view msg) { log(LogLevel::Debug, msg); }

  // The record as written (without the trailing newline); exposed for tests.
  std::string format(LogLevel level, std::string_view msg) const;

 private:
  int target() const;  // where records go; -1: nowhere

  LogContext ctx_;
  std::chrono::steady_clock::time_point start_;
  LogLevel level_ = LogLevel::Error;
  sys::Fd file_;           // the logFile, when one is configured and open
  bool toStderr_ = false;  // logLevel without logFile
  bool configured_ = false;
};

// The logger of this process, configured by pluginMain; lower layers may add debug records.
Logger& processLogger();

// The records pluginMain writes for one invocation.
// Before anything is parsed: the context from the raw CNI_* variables.
void logBegin(Logger& log, std::string_view prog);
// Config parsed: the network name, the log options, and (debug) what is about to happen.
void logConfigured(Logger& log, const Env& env, const NetConf& conf);
// The verb succeeded (info): for ADD, the addresses handed out (`addresses`). Never throws: it
// runs after the verb's point of no return.
void logSuccess(Logger& log, Command command, std::string_view addresses) noexcept;
// The verb failed (error): one line with the code and the message. When the config could not be
// parsed completely, the log options are taken from `input` as far as they are usable.
void logFailure(Logger& log, const Error& e, std::string_view input);

}  // namespace dualstack::cni

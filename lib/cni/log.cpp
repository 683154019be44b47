#include "dualstack/cni/log.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/file.hpp"

namespace dualstack::cni {

namespace {

constexpr std::string_view levelName(LogLevel l) {
  switch (l) {
    case LogLevel::Error:
      return "error";
    case LogLevel::Info:
      return "info";
    case LogLevel::Debug:
      return "debug";
  }
  return "?";
}

void warn(std::string_view prog, const std::string& text) {
  std::fprintf(stderr, "%.*s: warning: %s\n", static_cast<int>(prog.size()), prog.data(),
               text.c_str());
}

}  // namespace

LogConfig parseLogConfig(const json& raw) {
  LogConfig cfg;
  if (!raw.is_object()) return cfg;
  if (auto file = optString(raw, "logFile", "")) {
    if (file->empty() || (*file)[0] != '/' || file->find('\0') != std::string::npos) {
      throw Error(Code::InvalidConfig,
                  "logFile: " + logValue(*file, 64) + " is not an absolute path");
    }
    cfg.file = *file;
  }
  if (auto level = optString(raw, "logLevel", "")) {
    if (*level == "error")
      cfg.level = LogLevel::Error;
    else if (*level == "info")
      cfg.level = LogLevel::Info;
    else if (*level == "debug")
      cfg.level = LogLevel::Debug;
    else {
      throw Error(Code::InvalidConfig,
                  "logLevel: " + logValue(*level, 32) + " is not one of error, info, debug");
    }
  }
  return cfg;
}

Logger::Logger() : start_(std::chrono::steady_clock::now()) {}

Logger::~Logger() = default;

int Logger::target() const {
  if (file_) return file_.get();
  return toStderr_ ? STDERR_FILENO : -1;
}

void Logger::configure(const LogConfig& cfg) {
  if (configured_ || !cfg.enabled()) return;
  configured_ = true;
  level_ = cfg.level.value_or(LogLevel::Error);
  if (!cfg.file) {
    toStderr_ = true;
    return;
  }
  // Links refused: a symlink planted at the log path must not redirect our writes elsewhere.
  // A FIFO there must not block us until someone reads it, nor a device take our records.
  if (const sys::FileProblem p = sys::openRegularAt(
          AT_FDCWD, *cfg.file, O_WRONLY | O_CREAT | O_APPEND, 0600, sys::Links::Refuse, file_)) {
    warn(ctx_.prog, "cannot open log file " + *cfg.file + " (logFile): " +
                        (p.err != 0 ? std::string(std::strerror(p.err)) : "it " + p.describe()) +
                        "; not logging to it");
    return;
  }
}

bool Logger::enabled(LogLevel level) const {
  return configured_ && target() >= 0 && static_cast<int>(level) <= static_cast<int>(level_);
}

std::string Logger::format(LogLevel level, std::string_view msg) const {
  const auto elapsed = std::chrono::steady_clock::now() - start_;
  const double ms = std::chrono::duration<double, std::milli>(elapsed).count();
  char elapsedText[32];
  std::snprintf(elapsedText, sizeof elapsedText, "%.3f", ms);
  std::string line = "time=" + logTimestamp();
  line += " level=";
  line += levelName(level);
  line += " prog=" + logValue(ctx_.prog.empty() ? "-" : ctx_.prog, 64);
  line += " pid=" + std::to_string(::getpid());
  line += " cmd=" + logValue(ctx_.command.empty() ? "-" : ctx_.command, 16);
  line += " container=" + logValue(ctx_.containerId.empty() ? "-" : ctx_.containerId, 160);
  line += " ifname=" + logValue(ctx_.ifname.empty() ? "-" : ctx_.ifname, 32);
  line += " network=" + logValue(ctx_.network.empty() ? "-" : ctx_.network, 80);
  line += " elapsed_ms=";
  line += elapsedText;
  line += " msg=" + logValue(msg);
  return line;
}

void Logger::log(LogLevel level, std::string_view msg) {
  if (!enabled(level)) return;
  const std::string line = format(level, msg) + "\n";
  // One write per record: with O_APPEND the kernel places it whole at the end of the file.
  for (;;) {
    const ssize_t n = ::write(target(), line.data(), line.size());
    if (n >= 0 || errno != EINTR) {
      if (n < 0 && file_) {
        const int err = errno;
        warn(ctx_.prog, std::string("cannot write to the log file: ") + std::strerror(err));
        file_.reset();
      }
      return;
    }
  }
}

Logger& processLogger() {
  static Logger logger;
  return logger;
}

void logBegin(Logger& log, std::string_view prog) {
  auto get = [](const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
  };
  LogContext& ctx = log.context();
  ctx.prog = std::string(prog);
  ctx.command = get("CNI_COMMAND");
  ctx.containerId = get("CNI_CONTAINERID");
  ctx.ifname = get("CNI_IFNAME");
}

void logConfigured(Logger& log, const Env& env, const NetConf& conf) {
  log.context().network = conf.name;
  log.configure(parseLogConfig(conf.raw));
  if (!log.enabled(LogLevel::Debug)) return;
  // Names and shapes only: values of the config may be credentials.
  std::string msg = std::string(commandName(env.command)) + " start: cniVersion " +
                    conf.cniVersion + ", type " + (conf.type.empty() ? "-" : conf.type);
  if (const json& ipam = conf.ipam(); ipam.is_object()) {
    if (const auto it = ipam.find("type"); it != ipam.end() && it->is_string()) {
      msg += ", ipam.type " + it->get<std::string>().substr(0, 64);
    }
  }
  if (!env.netns.empty()) msg += ", netns " + env.netns;
  if (!env.argPairs.empty()) {
    msg += ", CNI_ARGS keys";
    for (std::size_t i = 0; i < env.argPairs.size(); ++i) {
      msg += (i == 0 ? " " : ",") + env.argPairs[i].first.substr(0, 64);
    }
  }
  msg += conf.prevResult().is_null() ? ", no prevResult" : ", with prevResult";
  log.debug(msg);
}

void logSuccess(Logger& log, Command command, std::string_view addresses) noexcept {
  try {
    if (!log.enabled(LogLevel::Info)) return;
    std::string msg = std::string(commandName(command)) + " ok";
    if (!addresses.empty()) msg += ": " + std::string(addresses);
    log.info(msg);
  } catch (const std::exception&) {  // out of memory: the verb succeeded all the same
  }
}

void logFailure(Logger& log, const Error& e, std::string_view input) {
  if (!log.configured()) {
    // The failure came before (or while) the config was validated: use its log options if they
    // are usable, ignore them otherwise (the error itself says what is wrong).
    // Top-level fields only: the input may be what was refused for its nesting.
    const json raw = parseJsonTop(input);
    if (raw.is_object()) {
      if (log.context().network.empty() && raw.contains("name") && raw["name"].is_string()) {
        log.context().network = raw["name"].get<std::string>();
      }
      LogConfig cfg;
      if (raw.contains("logFile") && raw["logFile"].is_string()) {
        const auto file = raw["logFile"].get<std::string>();
        if (!file.empty() && file[0] == '/') cfg.file = file;
      }
      if (raw.contains("logLevel") && raw["logLevel"].is_string()) {
        try {
          cfg.level = parseLogConfig(json{{"logLevel", raw["logLevel"]}}).level;
        } catch (const Error&) {
        }
      }
      log.configure(cfg);
    }
  }
  const std::string& cmd = log.context().command;
  log.error((cmd.empty() ? std::string("command") : cmd.substr(0, 16)) + " failed (code " +
            std::to_string(static_cast<int>(e.code())) + "): " + e.msg());
}

}  // namespace dualstack::cni

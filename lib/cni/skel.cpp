#include "dualstack/cni/skel.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "dualstack/cni/delegate.hpp"
#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/cni/log.hpp"
#include "dualstack/cni/version.hpp"

namespace dualstack::cni {

namespace {

Error configTooLarge() {
  return Error(Code::DecodeFailure, "network config on stdin is larger than " +
                                        std::to_string(kMaxConfigBytes) + " bytes");
}

std::string readStdin() {
  std::string data;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw errnoError(Code::IoFailure, "read network config from stdin", errno);
    }
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > kMaxConfigBytes) throw configTooLarge();
  }
  return data;
}

// The version to answer errors in: the config's when it names a supported one.
std::string errorVersion(const std::string& input) {
  // Top-level fields only: the input may be what was refused for its nesting.
  const auto j = parseJsonTop(input);
  if (j.is_object()) {
    if (const auto it = j.find("cniVersion"); it != j.end() && it->is_string()) {
      const auto& v = it->get_ref<const std::string&>();
      if (isSupportedVersion(v)) return v;
    }
  }
  return std::string(kLatestVersion);
}

void writeOut(const std::string& text) {
  std::size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    off += static_cast<std::size_t>(n);
  }
}

// The CNI error object a failed plugin prints on stdout.
std::string errorText(const Error& e, const std::string& input) {
  nlohmann::json j = {
      {"cniVersion", errorVersion(input)}, {"code", static_cast<int>(e.code())}, {"msg", e.msg()}};
  if (!e.details().empty()) j["details"] = e.details();
  // Messages may quote input bytes that are not UTF-8: replace them rather than throw here.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void errorLine(const Error& e, std::string_view prog) {
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(prog.size()), prog.data(), e.msg().c_str());
}

int reportError(const Error& e, const std::string& input, std::string_view prog) {
  writeOut(errorText(e, input) + "\n");
  errorLine(e, prog);
  return 1;
}

// The verb of a parsed invocation; returns the result of ADD (in conf.cniVersion's format), an
// empty one for the other verbs.
SerialisedResult dispatch(const Handlers& handlers, const Env& env, const NetConf& conf) {
  switch (env.command) {
    case Command::Add:
      return handlers.add(env, conf);
    case Command::Del:
      handlers.del(env, conf);
      break;
    case Command::Check:
      handlers.check(env, conf);
      break;
    case Command::Gc:
      handlers.gc(env, conf);
      break;
    case Command::Status:
      handlers.status(env, conf);
      break;
    case Command::Version:
      break;
  }
  return {};
}

}  // namespace

int pluginMain(int argc, char** argv, std::string_view usage, const Handlers& handlers) {
  const std::string_view prog =
      argc > 0 ? std::string_view(argv[0]).substr(std::string_view(argv[0]).rfind('/') + 1)
               : std::string_view("dualstack");
  const char* command = std::getenv("CNI_COMMAND");
  if (command == nullptr) {
    if (argc > 1 &&
        (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0)) {
      const std::string_view version = buildVersion();
      std::printf("%.*s %.*s\nCNI protocol versions supported:", static_cast<int>(prog.size()),
                  prog.data(), static_cast<int>(version.size()), version.data());
      for (auto v : kSupportedVersions) std::printf(" %.*s", static_cast<int>(v.size()), v.data());
      std::printf("\n");
      return 0;
    }
    if (handlers.interactive) return handlers.interactive(argc, argv);
    std::fwrite(usage.data(), 1, usage.size(), stdout);
    const bool help =
        argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
    return help ? 0 : 2;
  }

  Logger& log = processLogger();
  logBegin(log, prog);
  std::string input;
  try {
    input = readStdin();
    const Env env = envFromProcess();
    if (env.command == Command::Version) {
      std::string requested;
      if (!input.empty()) {
        const auto conf = parseJsonTop(input);
        if (conf.is_object()) {
          if (const auto it = conf.find("cniVersion"); it != conf.end() && it->is_string()) {
            requested = it->get<std::string>();
          }
        }
      }
      writeOut(versionInfo(requested).dump() + "\n");
      return 0;
    }
    const NetConf conf = parseNetConf(input, env.command);
    logConfigured(log, env, conf);
    const SerialisedResult result = dispatch(handlers, env, conf);
    if (env.command == Command::Add) writeOut(result.text);
    logSuccess(log, env.command, result.summary);
    return 0;
  } catch (const Error& e) {
    logFailure(log, e, input);
    return reportError(e, input, prog);
  } catch (const std::exception& e) {
    const Error internal(Code::Internal, std::string("internal error: ") + e.what());
    logFailure(log, internal, input);
    return reportError(internal, input, prog);
  }
}

nlohmann::json runInProcess(std::string_view prog, const Handlers& handlers, Command command,
                            std::string_view config) {
  const std::string label = "plugin " + std::string(prog);
  Logger log;
  logBegin(log, prog);
  log.context().command = std::string(commandName(command));
  const std::string input(config);
  // What the delegate() of the exec'd plugin makes of its error answer, byte for byte.
  const auto fail = [&](const Error& e) {
    logFailure(log, e, input);
    errorLine(e, prog);
    const auto answer = nlohmann::json::parse(errorText(e, input));
    return *reportedError(label, answer);
  };
  try {
    if (input.size() > kMaxConfigBytes) throw configTooLarge();
    const Env env = parseEnv([&](const char* name) -> std::optional<std::string> {
      if (std::strcmp(name, "CNI_COMMAND") == 0) return std::string(commandName(command));
      const char* v = std::getenv(name);
      if (v == nullptr) return std::nullopt;
      return std::string(v);
    });
    const NetConf conf = parseNetConf(input, env.command);
    logConfigured(log, env, conf);
    const SerialisedResult result = dispatch(handlers, env, conf);
    logSuccess(log, env.command, result.summary);
    // The exec'd plugin prints the result, and delegate() parses what it printed.
    if (env.command != Command::Add) return nullptr;
    return nlohmann::json::parse(result.text);
  } catch (const Error& e) {
    throw fail(e);
  } catch (const std::exception& e) {
    throw fail(Error(Code::Internal, std::string("internal error: ") + e.what()));
  }
}

}  // namespace dualstack::cni

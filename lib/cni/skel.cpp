#include "dualstack/cni/skel.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/cni/log.hpp"
#include "dualstack/cni/version.hpp"

#ifndef DUALSTACK_VERSION
#define DUALSTACK_VERSION "unknown"
#endif

namespace dualstack::cni {

namespace {

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
    if (data.size() > kMaxConfigBytes) {
      throw Error(Code::DecodeFailure, "network config on stdin is larger than " +
                                           std::to_string(kMaxConfigBytes) + " bytes");
    }
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

int reportError(const Error& e, const std::string& input, std::string_view prog) {
  nlohmann::json j = {{"cniVersion", errorVersion(input)},
                      {"code", static_cast<int>(e.code())},
                      {"msg", e.msg()}};
  if (!e.details().empty()) j["details"] = e.details();
  // Messages may quote input bytes that are not UTF-8: replace them rather than throw here.
  writeOut(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(prog.size()), prog.data(), e.msg().c_str());
  return 1;
}

}  // namespace

std::string_view buildVersion() { return DUALSTACK_VERSION; }

int pluginMain(int argc, char** argv, std::string_view usage, const Handlers& handlers) {
  const std::string_view prog = argc > 0 ? std::string_view(argv[0]).substr(
                                               std::string_view(argv[0]).rfind('/') + 1)
                                         : std::string_view("dualstack");
  const char* command = std::getenv("CNI_COMMAND");
  if (command == nullptr) {
    if (argc > 1 && (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0)) {
      std::printf("%.*s %s\nCNI protocol versions supported:", static_cast<int>(prog.size()),
                  prog.data(), DUALSTACK_VERSION);
      for (auto v : kSupportedVersions) std::printf(" %.*s", static_cast<int>(v.size()), v.data());
      std::printf("\n");
      return 0;
    }
    if (handlers.interactive) return handlers.interactive(argc, argv);
    std::fwrite(usage.data(), 1, usage.size(), stdout);
    const bool help = argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
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
    SerialisedResult result;
    switch (env.command) {
      case Command::Add:
        result = handlers.add(env, conf);
        writeOut(result.text);
        break;
      case Command::Del: handlers.del(env, conf); break;
      case Command::Check: handlers.check(env, conf); break;
      case Command::Gc: handlers.gc(env, conf); break;
      case Command::Status: handlers.status(env, conf); break;
      case Command::Version: break;
    }
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

}  // namespace dualstack::cni

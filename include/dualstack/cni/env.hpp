// The CNI_* environment of one plugin invocation, parsed and validated.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dualstack/sys/env.hpp"

namespace dualstack::cni {

enum class Command { Add, Del, Check, Gc, Status, Version };

std::string_view commandName(Command c);

struct Env {
  Command command = Command::Version;
  std::string containerId;
  std::string netns;  // may be empty on DEL (the runtime already removed the namespace)
  std::string ifname;
  std::string path;  // CNI_PATH, ':'-separated
  std::string args;  // CNI_ARGS as received
  std::vector<std::pair<std::string, std::string>> argPairs;

  // The value of key K in CNI_ARGS (K=V;K=V), if present.
  std::optional<std::string> arg(std::string_view key) const;
};

using sys::EnvLookup;
using sys::processEnv;

// Reads CNI_COMMAND and the variables that command requires; throws Error(InvalidEnv) naming the
// variable that is missing or malformed. An unknown CNI_COMMAND is Code::InvalidEnv too.
Env parseEnv(const EnvLookup& lookup);
Env envFromProcess();

// Validation shared with config parsing.
bool validContainerId(std::string_view id);    // ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$, <= 128 chars
bool validNetworkName(std::string_view name);  // same pattern: it becomes a directory name
bool validIfname(std::string_view name);  // 1-15 printable ASCII, no '/', ':', space, not . or ..
bool validNetnsPath(std::string_view path);  // printable ASCII (spaces too), at most PATH_MAX

// "IgnoreUnknown=1;K8S_POD_NAME=x" -> pairs; throws Error(InvalidEnv) on a pair without '='.
std::vector<std::pair<std::string, std::string>> parseCniArgs(std::string_view args);

}  // namespace dualstack::cni

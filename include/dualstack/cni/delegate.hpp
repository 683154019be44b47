// Running another plugin (the IPAM plugin named by ipam.type) the way a runtime would.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dualstack/cni/env.hpp"
#include "dualstack/cni/error.hpp"

namespace dualstack::cni {

// Finds `type` on the ':'-separated CNI_PATH. A type containing '/' is Error(InvalidConfig);
// a type found nowhere is Error(InvalidConfig) naming the directories searched.
std::string findPlugin(std::string_view type, std::string_view cniPath);

// The Error a failed plugin reported with the CNI error object `answer` on its stdout, its
// message prefixed with "<label>: " (e.g. "plugin host-local"); nullopt when `answer` is none.
std::optional<Error> reportedError(std::string_view label, const nlohmann::json& answer);

// What a delegate may take. A healthy IPAM plugin answers within milliseconds; dualstack-ipam
// itself waits at most sys::kLockWait (20 s) for its store lock and ipam.node.timeout (2 s by
// default) for the API server, so the time limit sits well above both, and below the 2 minutes
// kubelet allows a whole pod sandbox. Its output is a CNI result: 1 MiB, like the config we
// read on stdin, is far more than any result needs.
struct DelegateLimits {
  std::chrono::milliseconds timeout{60'000};
  std::size_t maxStdout = std::size_t{1} << 20;
  std::size_t maxStderr = std::size_t{64} << 10;  // forwarded; the rest is dropped with a note
};

// Execs plugin `type` in a process group of its own, with our environment (CNI_COMMAND replaced
// by `command`) and `config` on its stdin; its stderr is forwarded to ours. Returns its stdout
// parsed as JSON (null when empty). A non-zero exit becomes an Error with the delegate's code and
// message, prefixed by its name. Whatever the delegate does, this returns within the limits:
//   - it runs past `timeout`: its process group is killed, Error(TryAgainLater);
//   - it prints more than maxStdout: its process group is killed, Error(IoFailure);
//   - it exits while processes it started keep its pipes open: they are killed, and the
//     delegate's own answer counts.
// The delegate is always reaped and no descriptor is left open.
nlohmann::json delegate(std::string_view type, Command command, const Env& env,
                        std::string_view config, const DelegateLimits& limits = {});

}  // namespace dualstack::cni

// The common main loop of both plugins: read env and stdin, dispatch the verb, print the result
// or the CNI error JSON, and return the exit status.
#pragma once

#include <functional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/env.hpp"
#include "dualstack/cni/result.hpp"
#include "dualstack/sys/version.hpp"

namespace dualstack::cni {

struct Handlers {
  // Returns the result to print, in conf.cniVersion's format, serialised before the handler's
  // point of no return: after it, pluginMain only writes and logs, which cannot fail.
  std::function<SerialisedResult(const Env&, const NetConf&)> add;
  std::function<void(const Env&, const NetConf&)> del;
  std::function<void(const Env&, const NetConf&)> check;
  std::function<void(const Env&, const NetConf&)> gc;
  std::function<void(const Env&, const NetConf&)> status;
  // Called when the program runs without CNI_COMMAND (a person at a terminal). Returns the exit
  // status. When unset, a short description is printed.
  std::function<int(int argc, char** argv)> interactive = nullptr;
};

// `usage` is printed for --help (exit 0) and when run without CNI_COMMAND and no handler for
// that case (exit 2).
int pluginMain(int argc, char** argv, std::string_view usage, const Handlers& handlers);

// What delegate(prog, command, ...) returns or throws when the binary it would exec is this very
// program under the name `prog` (a multi-call binary of the same build) with `handlers`: the verb
// runs in this process instead, as pluginMain would run it in that child, which saves the exec.
// The child's view is reproduced: `config` as its stdin, this process's environment with
// CNI_COMMAND = command, its own log records under `prog`, its error line on stderr, and the
// result or Error (code, message prefixed with "plugin <prog>: ", details) that delegate() makes
// of its answer.
nlohmann::json runInProcess(std::string_view prog, const Handlers& handlers, Command command,
                            std::string_view config);

using sys::buildVersion;

}  // namespace dualstack::cni

// Running another plugin (the IPAM plugin named by ipam.type) the way a runtime would.
#pragma once

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

// Execs plugin `type` with our environment (CNI_COMMAND replaced by `command`), `config` on its
// stdin, its stderr passed through. Returns its stdout parsed as JSON (null when empty). A
// non-zero exit becomes an Error with the delegate's code and message, prefixed by its name.
nlohmann::json delegate(std::string_view type, Command command, const Env& env,
                        std::string_view config);

}  // namespace dualstack::cni

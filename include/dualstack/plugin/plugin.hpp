// The verbs of the `dualstack` interface plugin.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/env.hpp"
#include "dualstack/cni/skel.hpp"

namespace dualstack::plugin {

cni::SerialisedResult cmdAdd(const cni::Env& env, const cni::NetConf& conf);
void cmdDel(const cni::Env& env, const cni::NetConf& conf);
void cmdCheck(const cni::Env& env, const cni::NetConf& conf);
void cmdGc(const cni::Env& env, const cni::NetConf& conf);
void cmdStatus(const cni::Env& env, const cni::NetConf& conf);

cni::Handlers handlers();

// The text of `dualstack --help` (and of its manual page).
std::string_view usage();

}  // namespace dualstack::plugin

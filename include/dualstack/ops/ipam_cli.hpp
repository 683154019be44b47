// The command line of dualstack-ipam when a person runs it (no CNI_COMMAND): list, verify,
// release and gc over the address store. Wired in as cni::Handlers::interactive.
#pragma once

#include <string_view>

namespace dualstack::ops {

// Exit status: 0 success, 1 failure or (verify) problems found, 2 bad usage.
int ipamCli(int argc, char** argv);

std::string_view ipamUsage();

}  // namespace dualstack::ops

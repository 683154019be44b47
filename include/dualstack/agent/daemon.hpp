// dualstack-agent as a process: the daemon (the agent, its HTTP endpoints, the token keeper,
// signals) and the `status` command. main() only parses the options and calls these.
#pragma once

#include "dualstack/agent/options.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::agent {

// Runs until SIGTERM or SIGINT (SIGHUP: a full reconcile at once). The caller must have blocked
// SIGTERM, SIGINT and SIGHUP in every thread. Returns the exit status; throws sys::Error for a
// start that cannot succeed (an unusable kubeconfig, a metrics address in use).
int runDaemon(const Options& options);

// Prints what the agent at options.metricsAddress reports. Exit status 0, or 1 (and a message on
// stderr) when no agent answers.
int runStatus(const Options& options);

}  // namespace dualstack::agent

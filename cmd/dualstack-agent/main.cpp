#include <signal.h>

#include <iostream>

#include "dualstack/agent/daemon.hpp"
#include "dualstack/agent/options.hpp"
#include "dualstack/sys/env.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/version.hpp"

int main(int argc, char** argv) {
  // Blocked before any thread starts: the daemon waits for them with sigtimedwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  namespace agent = dualstack::agent;
  agent::Options options;
  try {
    options = agent::parseOptions(argc, argv, dualstack::sys::processEnv);
  } catch (const std::exception& e) {
    std::cerr << "dualstack-agent: " << e.what() << "\n";
    return 2;
  }
  try {
    switch (options.mode) {
      case agent::Options::Mode::Help:
        std::cout << agent::usage();
        return 0;
      case agent::Options::Mode::Version:
        std::cout << "dualstack-agent " << dualstack::sys::buildVersion() << "\n";
        return 0;
      case agent::Options::Mode::Status:
        return agent::runStatus(options);
      case agent::Options::Mode::Run:
        break;
    }
    return agent::runDaemon(options);
  } catch (const std::exception& e) {
    std::cerr << "dualstack-agent: " << e.what() << "\n";
    return 1;
  }
}

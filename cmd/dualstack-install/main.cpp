#include <signal.h>

#include <iostream>

#include "dualstack/install/installer.hpp"
#include "dualstack/sys/version.hpp"

int main(int argc, char** argv) {
  // Blocked before anything else: run() waits for them with sigtimedwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  try {
    if (argc == 2 && std::string_view(argv[1]) == "--version") {
      std::cout << "dualstack-install " << dualstack::sys::buildVersion() << "\n";
      return 0;
    }
    bool help = false;
    const auto options = dualstack::install::parseOptions(argc, argv, &help);
    if (help) {
      std::cout << dualstack::install::usage();
      return 0;
    }
    return dualstack::install::run(options);
  } catch (const std::exception& e) {
    std::cerr << "dualstack-install: " << e.what() << "\n";
    return 1;
  }
}

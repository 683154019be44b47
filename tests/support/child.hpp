// A background child process for tests (an installer, an agent): started with exactly the given
// arguments and environment and a clean signal mask, stderr to a file; killed (by its PID) and
// reaped when the object goes, also when the test fails.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace dualstack::testing {

class Child {
 public:
  Child(const std::vector<std::string>& args, const std::vector<std::string>& env,
        const std::string& errFile);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  // Exit status, or -1 if it did not exit (normally) within the limit.
  int wait(std::chrono::milliseconds limit);

 private:
  pid_t pid_ = -1;
};

}  // namespace dualstack::testing

// A background child process for tests (an installer, an agent, `ip monitor`): started with
// exactly the given arguments and environment and a clean signal mask, its output to files;
// killed (by its PID) and reaped when the object goes, also when the test fails.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace dualstack::testing {

class Child {
 public:
  // Where the child's stdout and stderr go: files, created or truncated.
  struct Output {
    std::string out = "/dev/null";
    std::string err = "/dev/null";
  };
  // args[0] is found on the PATH when it has no slash.
  Child(const std::vector<std::string>& args, const std::vector<std::string>& env,
        const Output& output);
  // stdout to /dev/null, stderr to `errFile`.
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

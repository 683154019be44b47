#include "dualstack/cni/delegate.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <optional>
#include <vector>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/sys/fd.hpp"

extern char** environ;

namespace dualstack::cni {

namespace {

using sys::Fd;

struct Pipe {
  Fd read, write;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw errnoError(Code::IoFailure, "create pipe", errno);
    read = Fd(fds[0]);
    write = Fd(fds[1]);
  }
};

// Writing to a delegate that exited without reading all of its stdin raises SIGPIPE, whose
// default action would kill this plugin before it can report the delegate's error. Block it in
// this thread while talking to the delegate (write then fails with EPIPE) and discard the signal
// we caused, leaving one that was already pending alone.
class SigpipeBlocker {
 public:
  SigpipeBlocker() {
    ::sigemptyset(&pipeSet_);
    ::sigaddset(&pipeSet_, SIGPIPE);
    sigset_t pending;
    ::sigpending(&pending);
    wasPending_ = ::sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipeSet_, &old_);
  }
  ~SigpipeBlocker() {
    sigset_t pending;
    if (!wasPending_ && ::sigpending(&pending) == 0 && ::sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{0, 0};
      ::sigtimedwait(&pipeSet_, nullptr, &zero);
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocker(const SigpipeBlocker&) = delete;
  SigpipeBlocker& operator=(const SigpipeBlocker&) = delete;

 private:
  sigset_t pipeSet_{};
  sigset_t old_{};
  bool wasPending_ = false;
};

using Clock = std::chrono::steady_clock;

// glibc 2.36 declares pidfd_open without C linkage for C++; the system call is the same.
int pidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// A delegate in a process group of its own (pgid == pid), so that it can be stopped together
// with whatever it started. Killed and reaped at the latest by the destructor.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid), pidfd_(pidfdOpen(pid)) {}
  ~Child() {
    if (!reaped_) stop();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The descriptor that becomes readable when the child exits (-1 before Linux 5.3).
  int pidfd() const { return pidfd_.get(); }

  bool exited() const {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == pid_;
  }

  // Kills what is left of the process group. While the child is not reaped its pid cannot be
  // reused, so the group is still the one it started.
  void killGroup() const {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);  // in case it left its group
  }

  // Kills the group and reaps the child, waiting for it a few seconds at most: a process stuck
  // in the kernel (D state) does not die of SIGKILL until it leaves it.
  void stop() {
    killGroup();
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!reap(WNOHANG) && Clock::now() < deadline) {
      pollfd pfd{pidfd_.get(), POLLIN, 0};
      if (pidfd_.get() < 0 || ::poll(&pfd, 1, 50) < 0) ::usleep(10'000);
    }
    if (reaped_) awaitGroupGone();
  }

  // After the group was killed and the child reaped: waits a little for the rest of the group to
  // be gone, so that nothing of it still holds a lock or a file when the caller carries on.
  void awaitGroupGone() const {
    const auto deadline = Clock::now() + std::chrono::seconds(1);
    while (::kill(-pid_, 0) == 0 && Clock::now() < deadline) ::usleep(1000);
  }

  // waitpid; true once reaped (status in *status).
  bool reap(int flags, int* status = nullptr) {
    int st = 0;
    pid_t r = -1;
    do {
      r = ::waitpid(pid_, &st, flags);
    } while (r < 0 && errno == EINTR);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      reaped_ = true;
      if (status != nullptr) *status = st;
      return true;
    }
    return false;
  }

 private:
  pid_t pid_;
  Fd pidfd_;
  bool reaped_ = false;
};

// The most one look at a pipe reads: the largest pipe buffer a process may set by default.
constexpr std::size_t kDrainBudget = std::size_t{1} << 20;

std::string sizeText(std::size_t bytes) {
  if (bytes % (std::size_t{1} << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes % (std::size_t{1} << 10) == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " bytes";
}

std::string secondsText(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

// Feeds `in` to the child's stdin, collects its stdout and forwards its stderr, until the child
// exits, without risking a deadlock when either side exceeds the pipe buffer.
class Exchange {
 public:
  Exchange(Fd toChild, Fd fromChild, Fd errFromChild, std::string_view in,
           const DelegateLimits& limits, const std::string& label)
      : to_(std::move(toChild)),
        out_(std::move(fromChild)),
        err_(std::move(errFromChild)),
        in_(in),
        limits_(limits),
        label_(label) {
    if (in_.empty()) to_.reset();
    for (const Fd* fd : {&to_, &out_, &err_}) {
      if (*fd) ::fcntl(fd->get(), F_SETFL, O_NONBLOCK);
    }
  }

  // Runs until the child exits (then true) or the deadline passes (false). Error(IoFailure)
  // when the child floods stdout.
  bool run(const Child& child, Clock::time_point deadline) {
    for (;;) {
      if (child.exited()) return true;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= std::chrono::milliseconds::zero()) return false;
      pollfd fds[4];
      nfds_t n = 0;
      const auto watch = [&](const Fd& fd, short events) {
        fds[n] = {fd.get(), events, 0};
        return fd ? static_cast<int>(n++) : -1;
      };
      const int iOut = watch(out_, POLLIN);
      const int iErr = watch(err_, POLLIN);
      const int iIn = watch(to_, POLLOUT);
      if (child.pidfd() >= 0) fds[n++] = {child.pidfd(), POLLIN, 0};
      // Without a pidfd, look at the child again now and then: it may exit while something it
      // started keeps the pipes open.
      const auto wait = child.pidfd() >= 0 ? left : std::min(left, std::chrono::milliseconds(50));
      if (::poll(fds, n, static_cast<int>(wait.count())) < 0) {
        if (errno == EINTR) continue;
        throw errnoError(Code::IoFailure, "poll the pipes of " + label_, errno);
      }
      if (iIn >= 0 && (fds[iIn].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) feed();
      if (iOut >= 0 && fds[iOut].revents != 0) drainStdout();
      if (iErr >= 0 && fds[iErr].revents != 0) drainStderr();
    }
  }

  // What is left in the pipes once the child has exited (and its group was killed).
  void finish() {
    to_.reset();
    drainStdout();
    drainStderr();
    if (dropped_ > 0) {
      const std::string note = "[" + label_ + ": " + std::to_string(dropped_) +
                               " more bytes of stderr dropped after " +
                               sizeText(limits_.maxStderr) + "]\n";
      forward(note.data(), note.size());
    }
  }

  std::string& output() { return output_; }

 private:
  void feed() {
    const ssize_t w = ::write(to_.get(), in_.data() + written_, in_.size() - written_);
    if (w > 0) written_ += static_cast<std::size_t>(w);
    // EPIPE: the delegate does not read its stdin; its exit status tells the rest.
    if (written_ == in_.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) to_.reset();
  }

  // Reads until the pipe is empty for now, but not more than a pipe's worth at a time: a writer
  // that never stops must not keep us from looking at the clock. Closes the pipe at its end.
  template <typename Sink>
  void drain(Fd& fd, Sink sink) {
    char buf[16384];
    for (std::size_t budget = kDrainBudget; fd && budget > 0;) {
      const ssize_t r = ::read(fd.get(), buf, std::min(sizeof buf, budget));
      if (r > 0) {
        budget -= static_cast<std::size_t>(r);
        sink(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        fd.reset();
      } else if (errno == EAGAIN) {
        return;
      }
    }
  }

  void drainStdout() {
    drain(out_, [&](const char* p, std::size_t len) {
      output_.append(p, len);
      if (output_.size() > limits_.maxStdout) {
        throw Error(Code::IoFailure, label_ + " wrote more than " + sizeText(limits_.maxStdout) +
                                         " to stdout, more than any CNI result; it was killed");
      }
    });
  }

  void drainStderr() {
    drain(err_, [&](const char* p, std::size_t len) {
      const std::size_t room = limits_.maxStderr - std::min(limits_.maxStderr, forwarded_);
      const std::size_t take = std::min(room, len);
      forward(p, take);
      forwarded_ += take;
      dropped_ += len - take;
    });
  }

  static void forward(const char* p, std::size_t len) {
    while (len > 0) {
      const ssize_t w = ::write(STDERR_FILENO, p, len);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return;  // our stderr is gone: nothing to be done about it
      p += w;
      len -= static_cast<std::size_t>(w);
    }
  }

  Fd to_, out_, err_;
  std::string_view in_;
  std::size_t written_ = 0;
  const DelegateLimits& limits_;
  const std::string& label_;
  std::string output_;
  std::size_t forwarded_ = 0;
  std::size_t dropped_ = 0;
};

}  // namespace

std::string findPlugin(std::string_view type, std::string_view cniPath) {
  if (type.empty()) throw Error(Code::InvalidConfig, "plugin type is empty");
  if (type.find('/') != std::string_view::npos || type == "." || type == "..") {
    throw Error(Code::InvalidConfig, "plugin type \"" + std::string(type.substr(0, 64)) +
                                         "\" must be a file name on CNI_PATH, not a path");
  }
  std::size_t pos = 0;
  while (pos <= cniPath.size()) {
    auto end = cniPath.find(':', pos);
    if (end == std::string_view::npos) end = cniPath.size();
    const auto dir = cniPath.substr(pos, end - pos);
    if (!dir.empty()) {
      std::string candidate = std::string(dir) + "/" + std::string(type);
      struct stat st {};
      if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
          ::access(candidate.c_str(), X_OK) == 0) {
        return candidate;
      }
    }
    pos = end + 1;
  }
  throw Error(Code::InvalidConfig, "plugin \"" + std::string(type) +
                                       "\" was not found in CNI_PATH (" + std::string(cniPath) +
                                       ")");
}

std::optional<Error> reportedError(std::string_view label, const json& answer) {
  if (!answer.is_object() || !answer.contains("code") || !answer["code"].is_number_integer() ||
      !answer.contains("msg") || !answer["msg"].is_string()) {
    return std::nullopt;
  }
  std::string details;
  if (answer.contains("details") && answer["details"].is_string()) {
    details = answer["details"].get<std::string>();
  }
  // CNI error codes are positive; one that does not fit ours would be passed on garbled.
  const json& code = answer["code"];
  if (!code.is_number_unsigned() || code.get<std::uint64_t>() < 1 ||
      code.get<std::uint64_t>() > static_cast<std::uint64_t>(INT32_MAX)) {
    return Error(Code::IoFailure,
                 std::string(label) + " failed with error code " + code.dump() +
                     ", which is out of range: " + answer["msg"].get<std::string>());
  }
  return Error(static_cast<Code>(code.get<int>()),
               std::string(label) + ": " + answer["msg"].get<std::string>(), details);
}

json delegate(std::string_view type, Command command, const Env& env, std::string_view config,
              const DelegateLimits& limits) {
  const std::string binary = findPlugin(type, env.path);
  const std::string label = "plugin " + std::string(type);

  std::vector<std::string> envStrings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "CNI_COMMAND=", 12) != 0) envStrings.emplace_back(*e);
  }
  envStrings.push_back("CNI_COMMAND=" + std::string(commandName(command)));
  std::vector<char*> envp;
  envp.reserve(envStrings.size() + 1);
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);

  Pipe in;
  Pipe out;
  Pipe err;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write.get(), STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::string arg0 = binary;
  char* argv[] = {arg0.data(), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, binary.c_str(), &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw errnoError(Code::IoFailure, "exec " + binary, rc);
  Child child(pid);
  in.read.reset();
  out.write.reset();
  err.write.reset();

  std::string output;
  {
    const SigpipeBlocker noSigpipe;
    Exchange exchange(std::move(in.write), std::move(out.read), std::move(err.read), config, limits,
                      label);
    if (!exchange.run(child, Clock::now() + limits.timeout)) {
      child.stop();
      exchange.finish();
      throw Error(Code::TryAgainLater,
                  label + " did not finish " + std::string(commandName(command)) + " within " +
                      secondsText(limits.timeout) + "; it was killed with what it started");
    }
    // The delegate has exited but is not reaped yet; what it left in its group goes now, so
    // that nothing holds the pipes.
    child.killGroup();
    exchange.finish();
    output = std::move(exchange.output());
  }
  int status = 0;
  child.reap(0, &status);
  child.awaitGroupGone();
  if (WIFSIGNALED(status)) {
    throw Error(Code::IoFailure,
                label + " was killed by signal " + std::to_string(WTERMSIG(status)));
  }
  const int exitCode = WEXITSTATUS(status);
  json parsed;
  if (!output.empty()) {
    try {
      parsed = parseJson(output, "the output of " + label);
    } catch (const Error&) {
      if (exitCode == 0) throw;
      parsed = parseJsonTop(output);  // of a CNI error, only top-level fields matter
    }
  }
  if (exitCode != 0) {
    if (auto e = reportedError(label, parsed)) throw *e;
    throw Error(Code::IoFailure, label + " failed with exit status " + std::to_string(exitCode) +
                                     " and no CNI error on stdout");
  }
  return parsed;
}

}  // namespace dualstack::cni

#include "dualstack/cni/delegate.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
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

// Writes `in` to the child's stdin and collects its stdout without risking a deadlock when
// either side exceeds the pipe buffer.
std::string exchange(Fd& toChild, Fd& fromChild, std::string_view in) {
  std::string out;
  std::size_t written = 0;
  if (in.empty()) toChild.reset();
  ::fcntl(toChild.get(), F_SETFL, O_NONBLOCK);
  char buf[16384];
  while (fromChild.get() >= 0) {
    pollfd fds[2] = {{fromChild.get(), POLLIN, 0}, {toChild.get(), POLLOUT, 0}};
    const nfds_t n = toChild.get() >= 0 ? 2 : 1;
    if (::poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      throw errnoError(Code::IoFailure, "poll delegate pipes", errno);
    }
    if (n == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t w = ::write(toChild.get(), in.data() + written, in.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      // EPIPE: the delegate does not read its stdin; its exit status tells the rest.
      if (written == in.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) toChild.reset();
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t r = ::read(fromChild.get(), buf, sizeof buf);
      if (r > 0) {
        out.append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        fromChild.reset();
      }
    }
  }
  return out;
}

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
  return Error(static_cast<Code>(answer["code"].get<int>()),
               std::string(label) + ": " + answer["msg"].get<std::string>(), details);
}

json delegate(std::string_view type, Command command, const Env& env, std::string_view config) {
  const std::string binary = findPlugin(type, env.path);
  const std::string label = "plugin " + std::string(type);

  std::vector<std::string> envStrings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "CNI_COMMAND=", 12) != 0) envStrings.emplace_back(*e);
  }
  envStrings.push_back("CNI_COMMAND=" + std::string(commandName(command)));
  std::vector<char*> envp;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);

  Pipe in;
  Pipe out;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), STDOUT_FILENO);
  std::string arg0 = binary;
  char* argv[] = {arg0.data(), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw errnoError(Code::IoFailure, "exec " + binary, rc);
  in.read.reset();
  out.write.reset();

  std::string output;
  try {
    const SigpipeBlocker noSigpipe;
    output = exchange(in.write, out.read, config);
  } catch (...) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw errnoError(Code::IoFailure, "wait for " + label, errno);
  }
  if (WIFSIGNALED(status)) {
    throw Error(Code::IoFailure, label + " was killed by signal " + std::to_string(WTERMSIG(status)));
  }
  const int exitCode = WEXITSTATUS(status);
  json parsed;
  if (!output.empty()) {
    try {
      parsed = json::parse(output);
    } catch (const json::exception&) {  // parse_error, or out_of_range for 1e999
      if (exitCode == 0) throw Error(Code::DecodeFailure, label + " printed output that is not JSON");
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

// Network namespace handles and a scoped setns guard.
//
// setns(2) changes the namespace of the calling *thread* only, and a new thread starts in the
// namespaces of the thread that created it. The plugins do their namespace work on the main
// thread: a ScopedSetns moves that thread, and every netlink socket and /proc/sys/net file that
// depends on the namespace is opened on it while the guard is held. DEL starts one more thread
// (lib/plugin/del.cpp) from the node's namespace, outside any guard, and it opens its own socket
// there. Whoever adds a thread must start it outside a ScopedSetns unless it is meant to work in
// that namespace, and must never hand it a guard. dualstack-agent, which runs several threads,
// never enters another namespace.
#pragma once

#include <sys/types.h>
#include <optional>
#include <string>
#include <string_view>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/fd.hpp"

namespace dualstack::netns {

// An open file descriptor of a network namespace (nsfs file such as /run/netns/NAME or
// /proc/PID/ns/net). Holding it keeps the namespace alive. Move-only.
class Netns {
 public:
  // Opens `path` and checks that it is a network namespace, without blocking or side effects
  // whatever it names (a FIFO, a device node, a directory): it is looked at through an O_PATH
  // descriptor first. `label` names where the path came from (e.g. "CNI_NETNS") so messages
  // read "CNI_NETNS /x is a FIFO, not a network namespace".
  // Throws sys::Error:
  //   Code::UnknownContainer  the path does not exist (ENOENT/ENOTDIR),
  //   Code::InvalidEnv        the path is empty or is not a network namespace file,
  //   Code::IoFailure         any other open/fstat failure.
  static Netns open(const std::string& path, std::string_view label = {});

  // As open(), but returns std::nullopt when the path does not exist (DEL of a vanished pod).
  static std::optional<Netns> openIfExists(const std::string& path, std::string_view label = {});

  // The network namespace of the calling thread (/proc/thread-self/ns/net).
  static Netns current();

  Netns(Netns&& other) noexcept = default;
  Netns& operator=(Netns&& other) noexcept = default;
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  ~Netns() = default;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  // True when both handles refer to the same namespace (same nsfs device and inode).
  bool sameAs(const Netns& other) const { return dev_ == other.dev_ && ino_ == other.ino_; }

 private:
  Netns(sys::Fd fd, std::string path, dev_t dev, ino_t ino)
      : fd_(std::move(fd)), path_(std::move(path)), dev_(dev), ino_(ino) {}
  static std::optional<Netns> openImpl(const std::string& path, std::string_view label,
                                       bool missingIsError);

  sys::Fd fd_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// Enters a network namespace for the lifetime of the guard and always returns the calling thread
// to the namespace it was in before, also when the scope is left by an exception. Entering the
// namespace the thread is already in is a no-op. Not copyable or movable: it is tied to a scope.
class ScopedSetns {
 public:
  // Throws sys::Error (Code::IoFailure) if setns fails; the thread is then unchanged.
  explicit ScopedSetns(const Netns& target);
  // If the original namespace cannot be restored the process aborts: carrying on in the wrong
  // namespace would apply host-side changes inside the pod (or the reverse).
  ~ScopedSetns();

  ScopedSetns(const ScopedSetns&) = delete;
  ScopedSetns& operator=(const ScopedSetns&) = delete;

 private:
  Netns original_;
  bool switched_ = false;
};

}  // namespace dualstack::netns

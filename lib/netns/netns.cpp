#include "dualstack/netns/netns.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/file.hpp"

namespace dualstack::netns {

using sys::Code;
using sys::Error;

namespace {

std::string describePath(const std::string& path, std::string_view label) {
  if (label.empty()) return path;
  return std::string(label) + " " + path;
}

}  // namespace

std::optional<Netns> Netns::openImpl(const std::string& path, std::string_view label,
                                     bool missingIsError) {
  const std::string shown = describePath(path, label);
  if (path.empty()) {
    throw Error(Code::InvalidEnv, label.empty() ? std::string("network namespace path is empty")
                                                : std::string(label) + " is empty");
  }
  // O_PATH first: it neither waits for the other end of a FIFO nor runs a device driver's open
  // (a tape that rewinds, a tty that becomes ours), so whatever the path names is harmless to
  // look at. setns(2) and ioctl(2) refuse O_PATH descriptors (EBADF, on every kernel up to 6.18
  // at least), so a path that turns out to be a namespace is opened again for real below.
  const sys::Fd probe(::open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!probe) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      if (!missingIsError) return std::nullopt;
      throw Error(Code::UnknownContainer,
                  shown + " does not exist (the container's network namespace is gone)");
    }
    throw sys::errnoError(Code::IoFailure, "open network namespace " + shown, err);
  }

  struct statfs fs {};
  struct stat st {};
  if (::fstatfs(probe.get(), &fs) != 0 || ::fstat(probe.get(), &st) != 0) {
    throw sys::errnoError(Code::IoFailure, "stat network namespace " + shown, errno);
  }
  // Since Linux 3.19 namespace files live on nsfs; older kernels exposed /proc/PID/ns/* on proc.
  const bool nsfs = fs.f_type == static_cast<decltype(fs.f_type)>(NSFS_MAGIC);
  const bool proc = fs.f_type == static_cast<decltype(fs.f_type)>(PROC_SUPER_MAGIC);
  constexpr const char* kExpected = " (expected e.g. /run/netns/NAME or /proc/PID/ns/net)";
  if (!nsfs && !(proc && S_ISREG(st.st_mode))) {
    throw Error(Code::InvalidEnv, shown + " is " + sys::fileTypeName(st.st_mode) +
                                      ", not a network namespace" + kExpected);
  }
  // The descriptor that can enter the namespace: reopened through the O_PATH one, so it is the
  // very file just checked even if the path has been replaced since.
  const std::string self = "/proc/self/fd/" + std::to_string(probe.get());
  sys::Fd fd(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys::errnoError(Code::IoFailure, "open network namespace " + shown, errno);

  // /proc/PID/ns/mnt and friends are nsfs files too, and any /proc file has the proc magic;
  // setns(CLONE_NEWNET) would only fail later with a bare EINVAL. NS_GET_NSTYPE exists since
  // Linux 4.11: an nsfs file that answers ENOTTY is on an older kernel and is given the benefit
  // of the doubt; a proc file must answer.
  const int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  const bool isNet = type == CLONE_NEWNET || (type < 0 && errno == ENOTTY && nsfs);
  if (!isNet) {
    throw Error(Code::InvalidEnv, shown + " is " +
                                      (nsfs ? "a namespace of another type" : "a /proc file") +
                                      ", not a network namespace" + kExpected);
  }
  return Netns(std::move(fd), path, st.st_dev, st.st_ino);
}

Netns Netns::open(const std::string& path, std::string_view label) {
  return *openImpl(path, label, true);
}

std::optional<Netns> Netns::openIfExists(const std::string& path, std::string_view label) {
  return openImpl(path, label, false);
}

Netns Netns::current() {
  // thread-self, not self: setns is per thread and the thread's namespace is what matters.
  return *openImpl("/proc/thread-self/ns/net", {}, true);
}

ScopedSetns::ScopedSetns(const Netns& target) : original_(Netns::current()) {
  if (target.sameAs(original_)) return;
  if (::setns(target.fd(), CLONE_NEWNET) != 0) {
    throw sys::errnoError(Code::IoFailure, "enter network namespace " + target.path(), errno);
  }
  switched_ = true;
}

ScopedSetns::~ScopedSetns() {
  if (!switched_) return;
  if (::setns(original_.fd(), CLONE_NEWNET) != 0) {
    const int err = errno;
    std::fprintf(stderr, "dualstack: fatal: cannot return to network namespace %s: %s\n",
                 original_.path().c_str(), std::strerror(err));
    std::abort();
  }
}

}  // namespace dualstack::netns

// The one owner of a file descriptor used by every layer: closed exactly once, on destruction
// unless released or closed earlier. Depends on nothing but libc, so the lowest layers use it too.
#pragma once

#include <unistd.h>

#include <utility>

namespace dualstack::sys {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes now and returns close(2)'s result: for a file just written, close reports deferred
  // write-back errors (NFS, quotas) that the destructor would have to drop.
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_ = -1;
};

}  // namespace dualstack::sys

#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "dualstack/cni/error.hpp"

namespace dualstack::k8s::detail {

using cni::Code;
using cni::Error;

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // close(2) reports delayed write errors, so the writer checks it.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string dirOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void makeDirs(const std::string& dir) {
  if (dir.empty() || dir == "/" || dir == ".") return;
  if (::mkdir(dir.c_str(), 0700) == 0) return;
  if (errno == EEXIST) return;
  if (errno != ENOENT) throw cni::errnoError(Code::IoFailure, "create directory " + dir, errno);
  makeDirs(dirOf(dir));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw cni::errnoError(Code::IoFailure, "create directory " + dir, errno);
  }
}

}  // namespace

std::string readFile(const std::string& path, std::string_view what, std::size_t maxBytes) {
  const std::string label = std::string(what) + " " + path;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw cni::errnoError(Code::IoFailure, "read " + label, errno);
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw cni::errnoError(Code::IoFailure, "read " + label, errno);
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > maxBytes) {
      throw Error(Code::IoFailure,
                  label + " is larger than " + std::to_string(maxBytes) + " bytes");
    }
  }
  return text;
}

void writeFileAtomic(const std::string& path, const std::string& content) {
  static std::atomic<unsigned> counter{0};
  const std::string dir = dirOf(path);
  makeDirs(dir);
  const std::string temp =
      dir + "/.tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) throw cni::errnoError(Code::IoFailure, "create " + temp, errno);
  auto fail = [&](const std::string& step) {
    const int err = errno;
    ::unlink(temp.c_str());
    return cni::errnoError(Code::IoFailure, step + " " + temp, err);
  };
  std::size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail("write");
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) throw fail("fsync");
  if (fd.close() != 0) throw fail("close");
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    throw cni::errnoError(Code::IoFailure, "rename " + temp + " to " + path, err);
  }
  Fd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dirFd.get() < 0 || ::fsync(dirFd.get()) != 0) {
    throw cni::errnoError(Code::IoFailure, "fsync directory " + dir, errno);
  }
}

}  // namespace dualstack::k8s::detail

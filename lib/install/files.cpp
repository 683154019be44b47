#include "dualstack/install/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "dualstack/cni/error.hpp"

namespace dualstack::install {

using cni::Code;
using cni::Error;

namespace {

constexpr std::size_t kMaxFile = std::size_t{1} << 30;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // close() reports write-back errors of some file systems (NFS): checked for files we wrote.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Removes a temp file unless it was renamed into place.
class TempName {
 public:
  TempName(int dirFd, std::string name) : dirFd_(dirFd), name_(std::move(name)) {}
  ~TempName() {
    if (!name_.empty()) ::unlinkat(dirFd_, name_.c_str(), 0);
  }
  TempName(const TempName&) = delete;
  TempName& operator=(const TempName&) = delete;
  const std::string& name() const { return name_; }
  void keep() { name_.clear(); }

 private:
  int dirFd_;
  std::string name_;
};

std::string join(const std::string& dir, const std::string& name) {
  return dir + (!dir.empty() && dir.back() == '/' ? "" : "/") + name;
}

Error ioError(std::string_view what, const std::string& path, int err) {
  return cni::errnoError(Code::IoFailure, std::string(what) + " " + path, err);
}

std::string readFd(int fd, const std::string& path, std::string_view what) {
  std::string data;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ioError("read " + std::string(what), path, errno);
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > kMaxFile) throw Error(Code::IoFailure, std::string(what) + " " + path + " is too large");
  }
  return data;
}

// Whether dir/name is a regular file with exactly this content and mode.
bool sameFile(int dirFd, const std::string& name, std::string_view content, mode_t mode) {
  Fd fd(::openat(dirFd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return false;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != mode ||
      static_cast<std::size_t>(st.st_size) != content.size()) {
    return false;
  }
  try {
    return readFd(fd.get(), name, "file") == content;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

bool replaceFile(const std::string& dir, const std::string& name, std::string_view content,
                 mode_t mode) {
  const std::string path = join(dir, name);
  Fd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirFd) throw ioError("open directory", dir, errno);
  if (sameFile(dirFd.get(), name, content, mode)) return false;

  // A dot name: runtimes skip it when they list the conf dir, and never exec it.
  TempName temp(dirFd.get(), "." + name + ".tmp-" + std::to_string(::getpid()));
  Fd fd(::openat(dirFd.get(), temp.name().c_str(),
                 O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) throw ioError("create", join(dir, temp.name()), errno);
  std::size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ioError("write", join(dir, temp.name()), errno);
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) throw ioError("fsync", join(dir, temp.name()), errno);
  if (::fchmod(fd.get(), mode) != 0) throw ioError("chmod", join(dir, temp.name()), errno);
  if (fd.close() != 0) throw ioError("close", join(dir, temp.name()), errno);
  // rename(2) swaps the name in one step: a concurrent exec or open sees the old file or the
  // new one, never a partial one, and a running binary keeps its old inode.
  if (::renameat(dirFd.get(), temp.name().c_str(), dirFd.get(), name.c_str()) != 0) {
    throw ioError("rename into place", path, errno);
  }
  temp.keep();
  if (::fsync(dirFd.get()) != 0) throw ioError("fsync", dir, errno);
  return true;
}

std::string readFile(const std::string& path, std::string_view what) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw ioError("read " + std::string(what), path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw Error(Code::IoFailure, "read " + std::string(what) + " " + path + ": is a directory");
  }
  return readFd(fd.get(), path, what);
}

void prepareDirectory(const std::string& dir) {
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) throw ioError("create directory", prefix, errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw ioError("stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) throw Error(Code::IoFailure, dir + " is not a directory");
  const std::string probe = join(dir, ".dualstack-install.probe-" + std::to_string(::getpid()));
  Fd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) throw ioError("cannot write into", dir, errno);
  ::unlink(probe.c_str());
}

bool removeFile(const std::string& dir, const std::string& name) {
  const std::string path = join(dir, name);
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw ioError("remove", path, errno);
}

}  // namespace dualstack::install

#include "dualstack/netns/sysctl.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <utility>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/io.hpp"

namespace dualstack::netns {

using sys::Fd;

using sys::Code;
using sys::Error;

namespace {

constexpr std::string_view kProcSys = "/proc/sys/";

std::string fullPath(std::string_view key) {
  if (key.starts_with(kProcSys)) return std::string(key);
  while (key.starts_with('/')) key.remove_prefix(1);
  return std::string(kProcSys) + std::string(key);
}

std::string_view trimRight(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

Error sysctlError(const std::string& what, const std::string& path, int err) {
  Error e = sys::errnoError(Code::IoFailure, what, err);
  std::string hint;
  switch (err) {
    case ENOENT:
      if (path.find("/net/ipv6/") != std::string::npos) {
        hint = "no such interface, or IPv6 is disabled in this network namespace or the kernel";
      } else if (path.find("/conf/") != std::string::npos ||
                 path.find("/neigh/") != std::string::npos) {
        hint = "no such interface in this network namespace";
      } else {
        hint = "no such sysctl in this kernel";
      }
      break;
    case EROFS:
    case EACCES:
      hint =
          "/proc/sys is read-only here; the plugin must run on the host with a writable /proc/sys";
      break;
    case EPERM:
      hint = "the plugin needs CAP_NET_ADMIN (run it as root on the host)";
      break;
    case EINVAL:
      hint = "the kernel rejected the value";
      break;
    default:
      break;
  }
  if (!hint.empty()) return Error(e.code(), e.msg() + " (" + hint + ")");
  return e;
}

// `name` relative to dirFd (AT_FDCWD: an absolute path); `path` is its full path, for messages.
std::string readAt(int dirFd, const char* name, const std::string& path) {
  Fd fd(::openat(dirFd, name, O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw sysctlError("read " + path, path, errno);
  std::string out;
  if (const int err = sys::readAll(fd.get(), out, 1 << 20); err != 0) {
    throw sysctlError("read " + path, path, err);
  }
  out.resize(trimRight(out).size());
  return out;
}

void writeAt(int dirFd, const char* name, const std::string& path, std::string_view value) {
  const std::string what = "write " + std::string(value) + " to " + path;
  Fd fd(::openat(dirFd, name, O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) throw sysctlError(what, path, errno);
  // proc_sys handlers parse the whole value from a single write at offset 0; never split it.
  ssize_t n = 0;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw sysctlError(what, path, errno);
  if (static_cast<std::size_t>(n) != value.size()) {
    throw Error(Code::IoFailure, what + ": short write (" + std::to_string(n) + " of " +
                                     std::to_string(value.size()) + " bytes)");
  }
  if (fd.close() != 0) throw sysctlError(what, path, errno);
}

}  // namespace

std::string readSysctl(std::string_view key) {
  const std::string path = fullPath(key);
  return readAt(AT_FDCWD, path.c_str(), path);
}

void writeSysctl(std::string_view key, std::string_view value) {
  const std::string path = fullPath(key);
  writeAt(AT_FDCWD, path.c_str(), path, value);
}

bool setSysctlIfDifferent(std::string_view key, std::string_view value) {
  if (trimRight(readSysctl(key)) == trimRight(value)) return false;
  writeSysctl(key, value);
  return true;
}

SysctlDir::SysctlDir(std::string_view dir) : path_(fullPath(dir)) {
  fd_ = Fd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd_) throw sysctlError("open " + path_, path_, errno);
}

std::string SysctlDir::read(const std::string& name) const {
  return readAt(fd_.get(), name.c_str(), path_ + "/" + name);
}

void SysctlDir::write(const std::string& name, std::string_view value) const {
  writeAt(fd_.get(), name.c_str(), path_ + "/" + name, value);
}

bool SysctlDir::setIfDifferent(const std::string& name, std::string_view value) const {
  if (trimRight(read(name)) == trimRight(value)) return false;
  write(name, value);
  return true;
}

}  // namespace dualstack::netns

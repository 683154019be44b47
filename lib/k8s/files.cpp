#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "dualstack/cni/error.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/io.hpp"

namespace dualstack::k8s::detail {

using cni::Code;
using cni::Error;
using sys::Fd;

namespace {


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
  if (!fd) throw cni::errnoError(Code::IoFailure, "read " + label, errno);
  std::string text;
  const int err = sys::readAll(fd.get(), text, maxBytes);
  if (err == EFBIG) {
    throw Error(Code::IoFailure, label + " is larger than " + std::to_string(maxBytes) + " bytes");
  }
  if (err != 0) throw cni::errnoError(Code::IoFailure, "read " + label, err);
  return text;
}

void writeFileAtomic(const std::string& path, const std::string& content) {
  static std::atomic<unsigned> counter{0};
  const std::string dir = dirOf(path);
  makeDirs(dir);
  Fd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirFd) throw cni::errnoError(Code::IoFailure, "open directory " + dir, errno);
  const std::string name = path.substr(path.rfind('/') + 1);
  const std::string temp = ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const sys::ReplaceFailure f = sys::replaceFileAt(dirFd.get(), name, temp, content, 0600);
  if (f.err != 0) {
    throw cni::errnoError(Code::IoFailure, std::string(f.step) + " " + dir + "/" + f.name, f.err);
  }
}

}  // namespace dualstack::k8s::detail

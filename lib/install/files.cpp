#include "dualstack/install/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <boost/filesystem/operations.hpp>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/file.hpp"
#include "dualstack/sys/io.hpp"

namespace dualstack::install {

using sys::Code;
using sys::Error;
using sys::Fd;

namespace {

constexpr std::size_t kMaxFile = std::size_t{1} << 30;

std::string join(const std::string& dir, const std::string& name) {
  return dir + (!dir.empty() && dir.back() == '/' ? "" : "/") + name;
}

Error ioError(std::string_view what, const std::string& path, int err) {
  return sys::errnoError(Code::IoFailure, std::string(what) + " " + path, err);
}

// Whether dir/name is a regular file with exactly this content and mode.
bool sameFile(int dirFd, const std::string& name, std::string_view content, mode_t mode) {
  Fd fd;
  struct stat st {};
  if (sys::openRegularAt(dirFd, name, O_RDONLY, 0, sys::Links::Refuse, fd, &st) ||
      (st.st_mode & 07777) != mode || static_cast<std::size_t>(st.st_size) != content.size()) {
    return false;
  }
  std::string data;
  return sys::readAll(fd.get(), data, content.size()) == 0 && data == content;
}

}  // namespace

bool replaceFile(const std::string& dir, const std::string& name, std::string_view content,
                 mode_t mode) {
  Fd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirFd) throw ioError("open directory", dir, errno);
  if (sameFile(dirFd.get(), name, content, mode)) return false;

  // A dot name: runtimes skip it when they list the conf dir, and never exec it. rename(2)
  // swaps the name in one step, so a running binary keeps its old inode.
  const std::string temp = "." + name + ".tmp-" + std::to_string(::getpid());
  const sys::ReplaceFailure f = sys::replaceFileAt(dirFd.get(), name, temp, content, mode);
  if (f.err != 0) throw ioError(f.step, join(dir, f.name), f.err);
  return true;
}

std::string readFile(const std::string& path, std::string_view what) {
  std::string data;
  // Links followed: a Secret or projected volume shows its files through symlinks.
  const sys::FileProblem p =
      sys::readRegularFileAt(AT_FDCWD, path, kMaxFile, sys::Links::Follow, data);
  if (p.err != 0 && p.err != EFBIG) throw ioError("read " + std::string(what), path, p.err);
  if (p) throw Error(Code::IoFailure, std::string(what) + " " + path + " " + p.describe());
  return data;
}

void prepareDirectory(const std::string& dir) {
  // The host's CNI directories, named by the operator: Boost.Filesystem creates what is missing
  // (mode 0777 less the umask, as mkdir -p does).
  boost::system::error_code ec;
  boost::filesystem::create_directories(dir, ec);
  if (ec) throw ioError("create directory", dir, ec.value());
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw ioError("stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) throw Error(Code::IoFailure, dir + " is not a directory");
  const std::string probe = join(dir, ".dualstack-install.probe-" + std::to_string(::getpid()));
  Fd fd;
  if (const sys::FileProblem p = sys::openRegularAt(AT_FDCWD, probe, O_WRONLY | O_CREAT | O_TRUNC,
                                                    0600, sys::Links::Refuse, fd)) {
    throw Error(Code::IoFailure, "cannot write into " + dir + ": " + probe + " " + p.describe());
  }
  ::unlink(probe.c_str());
}

Removal removeFileIfUnchanged(const std::string& dir, const std::string& name,
                              std::string_view content) {
  const std::string path = join(dir, name);
  Fd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirFd) {
    if (errno == ENOENT) return Removal::Missing;
    throw ioError("open directory", dir, errno);
  }
  Fd fd(::openat(dirFd.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT) return Removal::Missing;
    if (errno == ELOOP) return Removal::Changed;  // a symlink: not what we wrote
    throw ioError("open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw ioError("stat", path, errno);
  if (!S_ISREG(st.st_mode) || static_cast<std::size_t>(st.st_size) != content.size()) {
    return Removal::Changed;
  }
  std::string have;
  if (const int err = sys::readAll(fd.get(), have, content.size() + 1); err != 0) {
    if (err == EFBIG) return Removal::Changed;  // it grew since the fstat
    throw ioError("read", path, err);
  }
  if (have != content) return Removal::Changed;
  // Replacing a file renames a new inode over the name: the name must still be this inode.
  struct stat now {};
  if (::fstatat(dirFd.get(), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Removal::Missing;
    throw ioError("stat", path, errno);
  }
  if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) return Removal::Changed;
  if (::unlinkat(dirFd.get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return Removal::Missing;
    throw ioError("remove", path, errno);
  }
  return Removal::Removed;
}

}  // namespace dualstack::install

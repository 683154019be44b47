#include "dualstack/sys/file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dualstack/sys/io.hpp"

namespace dualstack::sys {

namespace {

// The errnos an open returns when it met something other than a regular file: a symlink under
// O_NOFOLLOW, a directory opened for writing, a FIFO without reader opened O_WRONLY|O_NONBLOCK,
// a device without a driver, a socket.
bool mayBeTheFileType(int err) {
  return err == ELOOP || err == EISDIR || err == ENXIO || err == ENODEV || err == EOPNOTSUPP ||
         err == EWOULDBLOCK;
}

}  // namespace

const char* fileTypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symbolic link";
    default:
      return "a file of unknown type";
  }
}

std::string FileProblem::describe() const {
  if (err == 0 && type == S_IFLNK) return "is a symbolic link, which is not followed";
  if (err == 0 && type != 0)
    return std::string("is ") + fileTypeName(type) + ", not a regular file";
  if (err == EFBIG) return "is larger than " + std::to_string(limit) + " bytes";
  return std::strerror(err);
}

FileProblem openRegularAt(int dirFd, const std::string& name, int flags, mode_t mode, Links links,
                          Fd& out, struct stat* st) {
  flags |= O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  if (links == Links::Refuse) flags |= O_NOFOLLOW;
  Fd fd(::openat(dirFd, name.c_str(), flags, mode));
  if (!fd) {
    const int err = errno;
    struct stat there {};
    const int statFlags = links == Links::Refuse ? AT_SYMLINK_NOFOLLOW : 0;
    if (mayBeTheFileType(err) && ::fstatat(dirFd, name.c_str(), &there, statFlags) == 0 &&
        !S_ISREG(there.st_mode)) {
      return {0, there.st_mode & S_IFMT};
    }
    return {err};
  }
  struct stat own {};
  struct stat& s = st != nullptr ? *st : own;
  if (::fstat(fd.get(), &s) != 0) return {errno};
  if (!S_ISREG(s.st_mode)) return {0, s.st_mode & S_IFMT};
  out = std::move(fd);
  return {};
}

FileProblem readRegularFileAt(int dirFd, const std::string& name, std::size_t maxBytes, Links links,
                              std::string& out, struct stat* statOut) {
  Fd fd;
  struct stat own {};
  struct stat& st = statOut != nullptr ? *statOut : own;
  if (FileProblem p = openRegularAt(dirFd, name, O_RDONLY, 0, links, fd, &st)) return p;
  if (static_cast<std::size_t>(st.st_size) > maxBytes) return {EFBIG, 0, maxBytes};
  const std::size_t start = out.size();
  // A regular file that reports a size ends at the first short read; /proc files report 0 and
  // are read until read(2) returns 0.
  const int err = readAll(fd.get(), out, maxBytes, /*stopAtShortRead=*/st.st_size > 0);
  if (err == 0) return {};
  out.resize(start);
  return {err, 0, err == EFBIG ? maxBytes : 0};
}

int makeDirs(const std::string& path, mode_t mode, std::string* failed) {
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      const int err = errno;
      if (failed != nullptr) *failed = prefix;
      return err;
    }
  }
  return 0;
}

}  // namespace dualstack::sys

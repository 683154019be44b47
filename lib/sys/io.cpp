#include "dualstack/sys/io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "dualstack/sys/fd.hpp"

namespace dualstack::sys {

int readAll(int fd, std::string& out, std::size_t maxBytes, bool stopAtShortRead) {
  const std::size_t start = out.size();
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() - start > maxBytes) return EFBIG;
    if (stopAtShortRead && static_cast<std::size_t>(n) < sizeof buf) return 0;
  }
}

int writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

ReplaceFailure replaceFileAt(int dirFd, const std::string& name, const std::string& tempName,
                             std::string_view content, mode_t mode) {
  constexpr int kCreate = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
  Fd fd(::openat(dirFd, tempName.c_str(), kCreate, 0600));
  if (!fd && errno == EEXIST) {
    // Left by a writer that died before its rename (a killed installer is PID 1 again in its
    // next container, so the name repeats): the temp name is private to this writer.
    ::unlinkat(dirFd, tempName.c_str(), 0);
    fd = Fd(::openat(dirFd, tempName.c_str(), kCreate, 0600));
  }
  if (!fd) return {"create", tempName, errno};
  auto fail = [&](const char* step, int err) {
    fd.reset();
    ::unlinkat(dirFd, tempName.c_str(), 0);
    return ReplaceFailure{step, tempName, err};
  };
  if (const int err = writeAll(fd.get(), content); err != 0) return fail("write", err);
  if (::fsync(fd.get()) != 0) return fail("fsync", errno);
  if (::fchmod(fd.get(), mode) != 0) return fail("chmod", errno);
  if (fd.close() != 0) return fail("close", errno);
  if (::renameat(dirFd, tempName.c_str(), dirFd, name.c_str()) != 0) {
    const int err = errno;
    ::unlinkat(dirFd, tempName.c_str(), 0);
    return {"rename into place", name, err};
  }
  if (::fsync(dirFd) != 0) return {"fsync the directory of", name, errno};
  return {};
}

int listDirAt(int dirFd, std::vector<DirEntry>& out) {
  // fdopendir takes over its descriptor: give it a fresh one, positioned at the start.
  const int fd = ::openat(dirFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    ::close(fd);
    return err;
  }
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") out.push_back({std::string(name), e->d_type});
  }
  const int err =
      errno;  // readdir returns nullptr at the end and on an error; only the latter sets it
  ::closedir(d);
  return err;
}

int removeStaleFilesAt(int dirFd, std::string_view prefix, std::chrono::seconds age,
                       std::string_view keep, std::size_t& removed) {
  std::vector<DirEntry> listed;
  if (const int err = listDirAt(dirFd, listed); err != 0) return err;
  const std::time_t now = std::time(nullptr);
  for (const auto& e : listed) {
    if (e.name.compare(0, prefix.size(), prefix) != 0 || e.name == keep) continue;
    struct stat st {};
    if (::fstatat(dirFd, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode) || now - st.st_mtime < age.count()) continue;
    if (::unlinkat(dirFd, e.name.c_str(), 0) == 0) ++removed;
  }
  return 0;
}

}  // namespace dualstack::sys

#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/file.hpp"
#include "dualstack/sys/io.hpp"

namespace dualstack::k8s::detail {

using sys::Code;
using sys::Error;
using sys::Fd;

namespace {

constexpr std::string_view kTempPrefix = ".tmp-";

std::string dirOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void makeDirs(const std::string& dir) {
  std::string failed;
  if (const int err = sys::makeDirs(dir, 0700, &failed); err != 0) {
    throw sys::errnoError(Code::IoFailure, "create directory " + failed, err);
  }
}

}  // namespace

std::optional<std::string> readFileIfExists(const std::string& path, std::string_view what,
                                            std::size_t maxBytes, sys::Links links) {
  const std::string label = std::string(what) + " " + path;
  std::string text;
  const sys::FileProblem p = sys::readRegularFileAt(AT_FDCWD, path, maxBytes, links, text);
  if (p.err == ENOENT) return std::nullopt;
  if (p.err != 0 && p.err != EFBIG) throw sys::errnoError(Code::IoFailure, "read " + label, p.err);
  if (p) throw Error(Code::IoFailure, label + " " + p.describe());
  return text;
}

std::string readFile(const std::string& path, std::string_view what, std::size_t maxBytes,
                     sys::Links links) {
  auto text = readFileIfExists(path, what, maxBytes, links);
  if (!text)
    throw sys::errnoError(Code::IoFailure, "read " + std::string(what) + " " + path, ENOENT);
  return std::move(*text);
}

void writeFileAtomic(const std::string& path, const std::string& content) {
  static std::atomic<unsigned> counter{0};
  const std::string dir = dirOf(path);
  makeDirs(dir);
  Fd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirFd) throw sys::errnoError(Code::IoFailure, "open directory " + dir, errno);
  const std::string name = path.substr(path.rfind('/') + 1);
  const std::string temp =
      std::string(kTempPrefix) + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const sys::ReplaceFailure f = sys::replaceFileAt(dirFd.get(), name, temp, content, 0600);
  if (f.err != 0) {
    throw sys::errnoError(Code::IoFailure, std::string(f.step) + " " + dir + "/" + f.name, f.err);
  }
}

std::size_t removeStaleTemps(const std::string& path, std::chrono::seconds age) {
  const Fd dirFd(::open(dirOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::size_t removed = 0;
  // A writer's temp lives from its creation to its rename, milliseconds apart; one `age` old
  // belongs to a writer that was killed. Should a writer stall that long all the same, its
  // rename fails and the cache is written at the next read from the API server: the cache
  // file itself is only ever replaced whole.
  if (dirFd) sys::removeStaleFilesAt(dirFd.get(), kTempPrefix, age, {}, removed);
  return removed;
}

}  // namespace dualstack::k8s::detail

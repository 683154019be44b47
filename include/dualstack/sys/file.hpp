// Opening files that someone other than this program may have put in place: every file the
// plugins read or write (the store, the node cache, kubeconfigs and the files they name, the log,
// the installer's inputs) goes through here. A FIFO planted under an expected name must not block
// the open or a read, a device node must not be taken for data, a symlink must not redirect a
// write, and nothing may be read without a size cap. Like io.hpp this reports errno-style values;
// each caller phrases its own error with the CNI code that fits its operation.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <string>

#include "dualstack/sys/fd.hpp"

namespace dualstack::sys {

enum class Links {
  Refuse,  // a symlink as the last component is an error (files we create and own)
  Follow,  // follow it (paths an operator names: kubelet's and Secret volumes' files are links)
};

// Why a file could not be opened or read as a regular file. Empty (false) on success.
struct FileProblem {
  int err = 0;            // an errno; EFBIG when larger than the cap
  mode_t type = 0;        // with err == 0: what is there instead of a regular file (S_IFIFO, ...)
  std::size_t limit = 0;  // the cap, when err == EFBIG

  explicit operator bool() const { return err != 0 || type != 0; }
  // What follows the path in a message: "is a FIFO, not a regular file", "is a symbolic link,
  // which is not followed", "is larger than 65536 bytes", or strerror(err).
  std::string describe() const;
};

// "a FIFO", "a directory", "a character device", "a block device", "a socket", "a symbolic link",
// "a regular file", "a file of unknown type" for the S_IFMT bits of `mode`.
const char* fileTypeName(mode_t mode);

// Opens dirFd/name (`name` may be absolute; AT_FDCWD for a plain path) with `flags` (an access
// mode, optionally O_CREAT, O_EXCL, O_APPEND) plus O_NONBLOCK, O_NOCTTY and O_CLOEXEC, and
// O_NOFOLLOW unless links are followed; keeps the descriptor only when fstat says it is a regular
// file. O_NONBLOCK lets the open of a FIFO return at once instead of waiting for its other end;
// on a regular file it changes nothing. `st`, when given, receives the fstat.
FileProblem openRegularAt(int dirFd, const std::string& name, int flags, mode_t mode, Links links,
                          Fd& out, struct stat* st = nullptr);

// Appends the whole regular file dirFd/name to `out`, opened as openRegularAt(O_RDONLY) does:
// EFBIG (and nothing appended) when it holds more than maxBytes. `st` as for openRegularAt.
FileProblem readRegularFileAt(int dirFd, const std::string& name, std::size_t maxBytes, Links links,
                              std::string& out, struct stat* st = nullptr);

// Creates directory `path` and its missing parents with `mode` (less the umask), as mkdir -p
// does. Returns 0, or the errno of the first component that could not be made, named in *failed.
int makeDirs(const std::string& path, mode_t mode, std::string* failed = nullptr);

}  // namespace dualstack::sys

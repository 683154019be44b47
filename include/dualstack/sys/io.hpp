// Whole-buffer reads and writes, and the atomic replacement of a file, shared by the layers that
// keep files (the IPAM store, the node cache, the installer). They report errno rather than throw,
// so each caller phrases its own error with the CNI code that fits its operation.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace dualstack::sys {

// Appends what remains in fd to `out`, retrying EINTR. Returns 0, an errno, or EFBIG once more
// than maxBytes were read (`out` then holds at least maxBytes + 1 bytes). With stopAtShortRead
// a read shorter than the buffer ends the loop: for a regular file that is its end, which saves
// the read that would return 0.
int readAll(int fd, std::string& out, std::size_t maxBytes, bool stopAtShortRead = false);

// Writes all of `data`, retrying EINTR and short writes. Returns 0 or an errno.
int writeAll(int fd, std::string_view data);

// Where replaceFileAt failed: the step ("create", "write", "fsync", "close", "chmod", "rename"),
// the name it failed on (relative to the directory) and the errno. err == 0: it succeeded.
struct ReplaceFailure {
  const char* step = "";
  std::string name;
  int err = 0;
};

// Replaces dirFd/name with `content` and `mode`: written to tempName in the same directory
// (created anew, never through a link; a stale file of that name is removed first), fsynced,
// chmod'ed, closed, renamed over `name` — readers and exec see the old file or the new one, never a
// partial one — and the directory fsynced. On failure the temp file is removed and nothing else has
// changed.
ReplaceFailure replaceFileAt(int dirFd, const std::string& name, const std::string& tempName,
                             std::string_view content, mode_t mode);

struct DirEntry {
  std::string name;
  unsigned char type = 0;  // d_type: DT_REG, DT_DIR, DT_LNK, ...; DT_UNKNOWN where the file system
                           // does not say (then fstatat tells)
};

// Appends the entries of the directory open as dirFd ("." and ".." left out, in the order the
// file system gives) to `out`. dirFd itself is neither moved nor closed. Returns 0 or an errno.
int listDirAt(int dirFd, std::vector<DirEntry>& out);

// How old a temp file must be before it is taken for one of a writer that was killed.
inline constexpr std::chrono::minutes kStaleTempAge{10};

// Removes the entries of the directory open as dirFd whose names start with `prefix` (temp files
// of writers killed before their rename), other than `keep`, that were last modified `age` or
// more ago: a live writer's temp exists for milliseconds, so a young one is left alone. Counts
// them in `removed`. Returns 0 or the errno of listing the directory; an entry that vanishes or
// cannot be removed is skipped.
int removeStaleFilesAt(int dirFd, std::string_view prefix, std::chrono::seconds age,
                       std::string_view keep, std::size_t& removed);

}  // namespace dualstack::sys

// File operations of the installer that must never leave a half-written file under its final
// name: a container runtime may exec a plugin binary or read a conflist at any moment.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace dualstack::install {

// Replaces dir/name with `content` and `mode`: written to a temp file in the same directory,
// fsynced, chmod'ed, renamed over the old name (atomic for readers and for exec), and the
// directory fsynced. Returns false, writing nothing, when the file already has that content and
// mode. Error(IoFailure) naming the file; the temp file is removed on failure.
bool replaceFile(const std::string& dir, const std::string& name, std::string_view content,
                 mode_t mode);

// The whole regular file, opened without blocking (links followed); Error(IoFailure)
// "read <what> <path>: <reason>", or naming what the path is instead (1 GiB at most).
std::string readFile(const std::string& path, std::string_view what);

// Creates dir and its missing parents (0755), then proves it writable by creating and removing
// a temp file. Error(IoFailure) naming the directory.
void prepareDirectory(const std::string& dir);

enum class Removal { Removed, Missing, Changed };

// Removes dir/name if it is still a regular file holding exactly `content`: a file someone
// replaced since (a newer installer, an operator) is theirs and stays (Changed). A missing file
// is fine (Missing). Error(IoFailure) naming the file when it cannot be read or removed.
Removal removeFileIfUnchanged(const std::string& dir, const std::string& name,
                              std::string_view content);

}  // namespace dualstack::install

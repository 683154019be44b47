// GNU build IDs: the linker's hash of an ELF file's content, which tells two copies of one build
// (also stripped ones: strip keeps the note) from two different builds.
#pragma once

#include <string>

namespace dualstack::sys {

// The build ID of the running program, read from its own image in memory (no system call);
// empty when it was linked without one.
const std::string& ownBuildId();

// The build ID of the ELF file open as fd (read with pread, at most a few KiB); empty when the
// file is not a 64-bit ELF file of this machine's byte order or carries no build ID.
std::string buildIdOf(int fd);

}  // namespace dualstack::sys

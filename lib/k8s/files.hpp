// Small file helpers shared inside the k8s layer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dualstack::k8s::detail {

// The whole file; Error(IoFailure) "read <what> <path>: <strerror>" (ENOENT included), or when it
// is larger than maxBytes.
std::string readFile(const std::string& path, std::string_view what, std::size_t maxBytes);

// Replaces `path` atomically with `content` (mode 0600): a temp file in the same directory,
// fsync, rename, fsync of the directory. Creates the directory (mode 0700) when missing.
// Error(IoFailure) naming the file.
void writeFileAtomic(const std::string& path, const std::string& content);

}  // namespace dualstack::k8s::detail

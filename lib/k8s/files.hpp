// Small file helpers shared inside the k8s layer.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "dualstack/sys/file.hpp"

namespace dualstack::k8s::detail {

// The whole regular file, opened without blocking (sys::readRegularFileAt); Error(IoFailure)
// "read <what> <path>: <strerror>" (ENOENT included), or naming what the path is instead of a
// regular file, or when it is larger than maxBytes. Links are followed unless refused: the
// files a kubeconfig names are often links (kubelet's rotated certificate, Secret volumes).
std::string readFile(const std::string& path, std::string_view what, std::size_t maxBytes,
                     sys::Links links = sys::Links::Follow);
// The same, but nullopt when the file does not exist.
std::optional<std::string> readFileIfExists(const std::string& path, std::string_view what,
                                            std::size_t maxBytes,
                                            sys::Links links = sys::Links::Follow);

// Removes temp files of writers killed before their rename (see writeFileAtomic) that are older
// than `age` from the directory of `path`; errors are ignored. Returns how many.
std::size_t removeStaleTemps(const std::string& path, std::chrono::seconds age);

// Replaces `path` atomically with `content` (mode 0600): a temp file in the same directory,
// fsync, rename, fsync of the directory. Creates the directory (mode 0700) when missing.
// Error(IoFailure) naming the file.
void writeFileAtomic(const std::string& path, const std::string& content);

}  // namespace dualstack::k8s::detail

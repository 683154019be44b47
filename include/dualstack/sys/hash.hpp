// FNV-1a: a small hash that gives the same value on every build and machine (std::hash does not),
// for short names derived from longer ones: host veth names, the store's index file names, the
// nftables table of a long network name, the agent's route metrics. Not for anything an attacker
// could exploit by choosing colliding inputs.
#pragma once

#include <cstdint>
#include <string_view>

namespace dualstack::sys {

inline constexpr std::uint64_t kFnv64Offset = 0xcbf29ce484222325ULL;
inline constexpr std::uint32_t kFnv32Offset = 0x811c9dc5U;

// FNV-1a 64 of `bytes`, continuing from `h` (the offset basis for a fresh hash).
constexpr std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t h = kFnv64Offset) {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// FNV-1a 32 of `bytes`, continuing from `h`.
constexpr std::uint32_t fnv1a32(std::string_view bytes, std::uint32_t h = kFnv32Offset) {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x01000193U;
  }
  return h;
}

}  // namespace dualstack::sys

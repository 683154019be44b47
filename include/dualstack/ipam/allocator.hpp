// The allocation policy, on top of the Store interface only (no disk: tests use a fake store).
//
// Each range set yields one address per attachment. A new address is searched round robin from
// the one after the set's last reserved address (so a crash-looping pod does not get its address
// straight back), wrapping from the end of the set to its start and skipping the network address,
// the gateway and the IPv4 broadcast address. Each candidate costs one O(1) store lookup, and the
// walk stops at the first free one, so it visits at most (allocated + skipped + 1) candidates:
// a sparsely used IPv6 /64 is never scanned address by address.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/error.hpp"
#include "dualstack/ip/address.hpp"
#include "dualstack/ipam/range.hpp"
#include "dualstack/ipam/store.hpp"

namespace dualstack::ipam {

// An address asked for by the runtime, with where it came from for messages.
struct Requested {
  ip::Address address;
  std::string source;  // e.g. "runtimeConfig.ips[0]", "CNI_ARGS IP"
  friend bool operator==(const Requested&, const Requested&) = default;
};

// Maps requested addresses to the range sets (result[i] for sets[i]). Throws Error(InvalidConfig)
// when an address lies in no range, is a network/gateway/broadcast address, or two fall into one
// set. Needs no store, so bad requests fail before anything is touched.
std::vector<std::optional<ip::Address>> assignRequested(const std::vector<RangeSet>& sets,
                                                        const std::vector<Requested>& requested);

// The next free address of `set`, round robin after its last reserved one; nullopt when every
// usable address is held.
std::optional<ip::Address> findFree(const RangeSet& set, Store& store);

// Error(RangeExhausted) text for a full set: "no free IPv4 address left in 10.244.1.0/30
// (1 allocated of 1 usable)".
std::string exhaustedMessage(const RangeSet& set);

struct Allocation {
  std::size_t set;  // index into the `sets` given to allocate()
  ip::Address address;
  bool fresh;  // reserved by this call (false: the attachment held it already)
};

// ADD: one address per set for the attachment, in `sets` order. Idempotent: addresses the
// attachment already holds are returned again. Addresses are chosen for every set before
// anything is written, so an exhausted set leaves the store untouched; a failed write releases
// what this call reserved. Does not commit.
std::vector<Allocation> allocate(const std::vector<RangeSet>& sets, const cni::Attachment& a,
                                 const std::vector<std::optional<ip::Address>>& requested,
                                 Store& store);

// DEL: releases every address of the attachment (none is fine). Carries on past failures and
// then throws one Error listing them all. Returns what was released.
std::vector<ip::Address> release(const cni::Attachment& a, Store& store);

struct GcResult {
  std::vector<ip::Address> released;
  cni::ErrorList errors;  // the addresses that could not be released, and why
};
// GC: releases every allocation whose owner is not among `valid` (a legacy ID-only owner is kept
// when any valid attachment has its container ID; a record naming nobody is released).
GcResult collectGarbage(const std::vector<cni::Attachment>& valid, Store& store);
// Whether GC keeps an allocation of `owner` (the rule collectGarbage applies).
bool keptByGc(const std::optional<Owner>& owner, const std::vector<cni::Attachment>& valid);

// STATUS: the first set with no free address, or nullptr.
const RangeSet* firstExhausted(const std::vector<RangeSet>& sets, Store& store);

}  // namespace dualstack::ipam

// Address ranges to allocate from, with host-local's semantics: a range is a subnet with an
// inclusive [start, end] and a gateway; a range set is one or more ranges of one family from which
// one address is handed out per attachment. Pure values: no syscalls.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/ip/address.hpp"

namespace dualstack::ipam {

struct Range {
  ip::Prefix subnet;  // host bits clear
  ip::Address start;  // inclusive
  ip::Address end;    // inclusive
  ip::Address gateway;

  // Within [start, end].
  bool contains(const ip::Address& a) const;
  // The network address, the gateway and the IPv4 broadcast address are never handed out.
  bool isReserved(const ip::Address& a) const;
  // Addresses of [start, end] that can be handed out (saturates at 2^128 - 1).
  ip::u128 usable() const;
  // "10.244.1.0/24", or "10.244.1.0/24 (10.244.1.10-10.244.1.20)" when start/end narrow it.
  std::string str() const;

  friend bool operator==(const Range&, const Range&) = default;
};

// Builds a range with host-local's defaults: gateway and start network+1, end the last address
// (the one before broadcast for IPv4). Throws Error(InvalidConfig) naming `where` when the subnet
// has host bits set, a bound or the gateway lies outside it, start > end, or nothing is usable.
Range makeRange(const ip::Prefix& subnet, std::optional<ip::Address> start,
                std::optional<ip::Address> end, std::optional<ip::Address> gateway,
                std::string_view where);

struct RangeSet {
  std::size_t id = 0;  // N of last_reserved_ip.N: the set's index in the config
  std::vector<Range> ranges;

  ip::Family family() const { return ranges.front().subnet.family(); }
  // The range whose [start, end] holds a, or nullptr.
  const Range* rangeFor(const ip::Address& a) const;
  // The range whose subnet holds a, or nullptr.
  const Range* subnetFor(const ip::Address& a) const;
  ip::u128 usable() const;
  std::string str() const;  // ranges joined by ", "

  friend bool operator==(const RangeSet&, const RangeSet&) = default;
};

// Throws Error(InvalidConfig) when two ranges anywhere in `sets` overlap ([start, end] intersect)
// or a set mixes families. `names[i]` names set i in messages (e.g. "ipam.ranges[1]").
void checkRangeSets(const std::vector<RangeSet>& sets, const std::vector<std::string>& names);

// Decimal text of a 128-bit count.
std::string decimal(ip::u128 v);
// "IPv4" or "IPv6".
std::string_view familyLabel(ip::Family f);

}  // namespace dualstack::ipam

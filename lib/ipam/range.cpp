#include "dualstack/ipam/range.hpp"

#include "dualstack/cni/error.hpp"

namespace dualstack::ipam {

using cni::Code;
using cni::Error;
using ip::Address;
using ip::u128;

namespace {

u128 saturatingAdd(u128 a, u128 b) { return a + b < a ? ~u128{0} : a + b; }

Address defaultStart(const ip::Prefix& subnet) { return subnet.first().plus(1); }
// host-local: the last address, except IPv4 broadcast.
Address defaultEnd(const ip::Prefix& subnet) {
  return subnet.family() == ip::Family::V4 ? subnet.last().minus(1) : subnet.last();
}

}  // namespace

std::string decimal(u128 v) {
  if (v == 0) return "0";
  std::string s;
  while (v != 0) {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  return s;
}

std::string_view familyLabel(ip::Family f) { return f == ip::Family::V4 ? "IPv4" : "IPv6"; }

bool Range::contains(const Address& a) const {
  return a.family() == start.family() && start <= a && a <= end;
}

bool Range::isReserved(const Address& a) const {
  return a == subnet.first() || a == gateway || (a.isV4() && a == subnet.last());
}

u128 Range::usable() const {
  // Counted as (end - start) + 1 - reserved so that an IPv6 /0 cannot overflow.
  const u128 minusOne = end.value() - start.value();
  std::vector<Address> reserved;
  for (const Address& r : {subnet.first(), gateway, subnet.last()}) {
    if (!contains(r) || !isReserved(r)) continue;
    bool seen = false;
    for (const auto& s : reserved) seen = seen || s == r;
    if (!seen) reserved.push_back(r);
  }
  if (reserved.empty()) return saturatingAdd(minusOne, 1);
  return minusOne - (reserved.size() - 1);
}

std::string Range::str() const {
  if (start == defaultStart(subnet) && end == defaultEnd(subnet)) return subnet.str();
  return subnet.str() + " (" + start.str() + "-" + end.str() + ")";
}

Range makeRange(const ip::Prefix& subnet, std::optional<Address> start, std::optional<Address> end,
                std::optional<Address> gateway, std::string_view where) {
  const std::string at = where.empty() ? std::string() : std::string(where) + ": ";
  if (subnet.hostBitsSet()) {
    throw Error(Code::InvalidConfig, at + subnet.str() + " has host bits set (the network is " +
                                         subnet.network().str() + ")");
  }
  // A /31 or /32 (/127, /128) has no address left once the network, gateway (and broadcast)
  // are taken out; host-local refuses them too.
  if (subnet.length() > subnet.address().bits() - 2) {
    throw Error(Code::InvalidConfig, at + subnet.str() +
                                         " is too small: it has no usable address " +
                                         "besides the network, gateway and broadcast addresses");
  }
  auto check = [&](const std::optional<Address>& a, const char* what) {
    if (!a) return;
    if (a->family() != subnet.family() || !subnet.contains(*a)) {
      throw Error(Code::InvalidConfig,
                  at + what + " " + a->str() + " is outside the subnet " + subnet.str());
    }
  };
  check(start, "rangeStart");
  check(end, "rangeEnd");
  check(gateway, "gateway");

  Range r;
  r.subnet = subnet;
  r.gateway = gateway.value_or(subnet.first().plus(1));
  r.start = start.value_or(defaultStart(subnet));
  r.end = end.value_or(defaultEnd(subnet));
  if (r.start > r.end) {
    throw Error(Code::InvalidConfig,
                at + "rangeStart " + r.start.str() + " is after rangeEnd " + r.end.str());
  }
  if (r.usable() == 0) {
    throw Error(Code::InvalidConfig, at + "no usable address between rangeStart " + r.start.str() +
                                         " and rangeEnd " + r.end.str() +
                                         " once the network, gateway and broadcast are skipped");
  }
  return r;
}

const Range* RangeSet::rangeFor(const Address& a) const {
  for (const auto& r : ranges) {
    if (r.contains(a)) return &r;
  }
  return nullptr;
}

const Range* RangeSet::subnetFor(const Address& a) const {
  for (const auto& r : ranges) {
    if (r.subnet.contains(a)) return &r;
  }
  return nullptr;
}

u128 RangeSet::usable() const {
  u128 n = 0;
  for (const auto& r : ranges) n = saturatingAdd(n, r.usable());
  return n;
}

std::string RangeSet::str() const {
  std::string s;
  for (const auto& r : ranges) {
    if (!s.empty()) s += ", ";
    s += r.str();
  }
  return s;
}

void checkRangeSets(const std::vector<RangeSet>& sets, const std::vector<std::string>& names) {
  auto name = [&](std::size_t set, std::size_t range) {
    return names.at(set) + "[" + std::to_string(range) + "]";
  };
  for (std::size_t i = 0; i < sets.size(); ++i) {
    if (sets[i].ranges.empty()) throw Error(Code::InvalidConfig, names.at(i) + " is empty");
    for (std::size_t j = 0; j < sets[i].ranges.size(); ++j) {
      const Range& a = sets[i].ranges[j];
      if (a.subnet.family() != sets[i].family()) {
        throw Error(Code::InvalidConfig, name(i, j) + ": " + a.subnet.str() +
                                             " mixes address families within one range set");
      }
      for (std::size_t k = 0; k <= i; ++k) {
        for (std::size_t l = 0; l < (k == i ? j : sets[k].ranges.size()); ++l) {
          const Range& b = sets[k].ranges[l];
          if (a.start.family() == b.start.family() && a.start <= b.end && b.start <= a.end) {
            throw Error(Code::InvalidConfig, name(i, j) + ": " + a.str() + " overlaps " +
                                                 name(k, l) + " (" + b.str() + ")");
          }
        }
      }
    }
  }
}

}  // namespace dualstack::ipam

#include "dualstack/ipam/allocator.hpp"

#include <algorithm>

#include "dualstack/cni/error.hpp"

namespace dualstack::ipam {

using cni::Code;
using cni::Error;
using ip::Address;
using ip::u128;

namespace {

std::string attachmentName(const cni::Attachment& a) { return a.containerId + "/" + a.ifname; }

std::string allSets(const std::vector<RangeSet>& sets) {
  std::string s;
  for (const auto& set : sets) {
    if (!s.empty()) s += "; ";
    s += set.str();
  }
  return s;
}

// The set an address the attachment already holds belongs to: by [start, end] first, then by
// subnet (so narrowing rangeStart later does not hand the pod a second address).
std::optional<std::size_t> setOf(const std::vector<RangeSet>& sets, const Address& a) {
  for (std::size_t i = 0; i < sets.size(); ++i) {
    if (sets[i].rangeFor(a) != nullptr) return i;
  }
  for (std::size_t i = 0; i < sets.size(); ++i) {
    if (sets[i].subnetFor(a) != nullptr) return i;
  }
  return std::nullopt;
}

std::string reservedWhat(const Range& r, const Address& a) {
  if (a == r.gateway) return "the gateway";
  if (a == r.subnet.first()) return "the network address";
  return "the broadcast address";
}

}  // namespace

std::vector<std::optional<Address>> assignRequested(const std::vector<RangeSet>& sets,
                                                    const std::vector<Requested>& requested) {
  std::vector<std::optional<Address>> out(sets.size());
  std::vector<std::string> sources(sets.size());
  for (const auto& req : requested) {
    const Address& a = req.address;
    std::optional<std::size_t> index;
    for (std::size_t i = 0; i < sets.size() && !index; ++i) {
      if (sets[i].rangeFor(a) != nullptr) index = i;
    }
    if (!index) {
      for (const auto& set : sets) {
        if (const Range* r = set.subnetFor(a)) {
          throw Error(Code::InvalidConfig,
                      req.source + ": requested address " + a.str() + " is in " + r->subnet.str() +
                          " but outside its range " + r->start.str() + "-" + r->end.str());
        }
      }
      throw Error(Code::InvalidConfig, req.source + ": requested address " + a.str() +
                                           " is in none of the ranges (" + allSets(sets) + ")");
    }
    const Range* r = sets[*index].rangeFor(a);
    if (r->isReserved(a)) {
      throw Error(Code::InvalidConfig, req.source + ": requested address " + a.str() + " is " +
                                           reservedWhat(*r, a) + " of " + r->subnet.str());
    }
    if (out[*index] && *out[*index] != a) {
      throw Error(Code::InvalidConfig, req.source + ": requested address " + a.str() + " and " +
                                           out[*index]->str() + " (" + sources[*index] +
                                           ") fall into the same range (" + sets[*index].str() +
                                           "); an attachment gets one address per range");
    }
    out[*index] = a;
    sources[*index] = req.source;
  }
  return out;
}

std::optional<Address> findFree(const RangeSet& set, Store& store) {
  const auto& ranges = set.ranges;
  std::size_t ri = 0;
  Address cur = ranges[0].start;
  auto advance = [&] {
    if (cur == ranges[ri].end) {
      ri = (ri + 1) % ranges.size();
      cur = ranges[ri].start;
    } else {
      cur = cur.plus(1);
    }
  };
  if (const auto last = store.lastReserved(set.id)) {
    // A stale or foreign value (the config changed) only costs round robin this once.
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      if (ranges[i].contains(*last)) {
        ri = i;
        cur = *last;
        advance();
        break;
      }
    }
  }
  // Positions in the set minus one; ranges do not overlap, so this fits even for an IPv6 /0.
  u128 positionsMinusOne = ranges.size() - 1;
  for (const auto& r : ranges) positionsMinusOne += r.end.value() - r.start.value();
  for (u128 i = 0;; ++i) {
    if (!ranges[ri].isReserved(cur) && !store.isAllocated(cur)) return cur;
    if (i == positionsMinusOne) return std::nullopt;
    advance();
  }
}

std::string exhaustedMessage(const RangeSet& set) {
  // Exhaustion means every usable address was found held.
  const std::string n = decimal(set.usable());
  return "no free " + std::string(familyLabel(set.family())) + " address left in " + set.str() +
         " (" + n + " allocated of " + n + " usable)";
}

std::vector<Allocation> allocate(const std::vector<RangeSet>& sets, const cni::Attachment& a,
                                 const std::vector<std::optional<Address>>& requested,
                                 Store& store) {
  const std::vector<Address> held = store.addressesOf(a);
  std::vector<Allocation> out;
  out.reserve(sets.size());
  for (std::size_t i = 0; i < sets.size(); ++i) {
    const std::optional<Address> want = i < requested.size() ? requested[i] : std::nullopt;
    std::optional<Address> mine;
    for (const auto& h : held) {
      if (setOf(sets, h) == i) {
        mine = h;
        break;
      }
    }
    if (mine) {
      if (want && *want != *mine) {
        throw Error(Code::AlreadyExists, attachmentName(a) + " already holds " + mine->str() +
                                             " in " + sets[i].str() + ", not the requested " +
                                             want->str() + "; DEL it first to change address");
      }
      out.push_back({i, *mine, false});
      continue;
    }
    if (want) {
      if (store.isAllocated(*want)) {
        const auto owner = store.ownerOf(*want);
        throw Error(Code::AlreadyExists, "requested address " + want->str() +
                                             " is already allocated" +
                                             (owner ? " to " + owner->str() : std::string()));
      }
      out.push_back({i, *want, true});
      continue;
    }
    const auto free = findFree(sets[i], store);
    if (!free) throw Error(Code::RangeExhausted, exhaustedMessage(sets[i]));
    out.push_back({i, *free, true});
  }

  // Everything is chosen: now write. We hold the lock, so a reservation can only fail when
  // something writes the store without it; then take the next free address.
  std::vector<Address> reserved;
  try {
    for (auto& al : out) {
      if (!al.fresh) continue;
      const bool wasRequested = al.set < requested.size() && requested[al.set].has_value();
      for (int attempt = 0; !store.reserve(al.address, a); ++attempt) {
        if (wasRequested || attempt == 8) {
          throw Error(Code::TryAgainLater,
                      al.address.str() +
                          " was taken while this ADD held the store lock; is "
                          "something writing the store without taking its lock?");
        }
        const auto next = findFree(sets[al.set], store);
        if (!next) throw Error(Code::RangeExhausted, exhaustedMessage(sets[al.set]));
        al.address = *next;
      }
      reserved.push_back(al.address);
    }
    for (const auto& al : out) {
      if (al.fresh) store.setLastReserved(sets[al.set].id, al.address);
    }
  } catch (...) {
    for (const auto& r : reserved) {
      try {
        store.release(r);
      } catch (const std::exception&) {
        // The ADD error is what the runtime needs; a runtime follows a failed ADD with DEL.
      }
    }
    throw;
  }
  return out;
}

std::vector<Address> release(const cni::Attachment& a, Store& store) {
  std::vector<Address> released;
  cni::ErrorList errors;
  for (const auto& addr : store.allAddressesOf(a)) {
    try {
      store.release(addr);
      released.push_back(addr);
    } catch (const Error& e) {
      errors.add(e);
    }
  }
  errors.throwIfAny("release " + attachmentName(a));
  return released;
}

GcResult collectGarbage(const std::vector<cni::Attachment>& valid, Store& store) {
  GcResult result;
  for (const auto& [addr, owner] : store.list()) {
    if (keptByGc(owner, valid)) continue;
    try {
      store.release(addr);
      result.released.push_back(addr);
    } catch (const Error& e) {
      result.errors.add(e);
    }
  }
  return result;
}

bool keptByGc(const std::optional<Owner>& owner, const std::vector<cni::Attachment>& valid) {
  if (!owner) return false;
  return std::any_of(valid.begin(), valid.end(),
                     [&](const cni::Attachment& v) { return owner->holds(v); });
}

const RangeSet* firstExhausted(const std::vector<RangeSet>& sets, Store& store) {
  for (const auto& set : sets) {
    if (!findFree(set, store)) return &set;
  }
  return nullptr;
}

}  // namespace dualstack::ipam

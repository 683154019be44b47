// An in-memory Store for allocator tests: no disk, no root.
#pragma once

#include <map>
#include <set>

#include "dualstack/cni/error.hpp"
#include "dualstack/ipam/store.hpp"

namespace dualstack::ipam::testing {

class FakeStore : public Store {
 public:
  std::map<ip::Address, std::optional<Owner>> held;
  std::map<std::size_t, ip::Address> last;
  std::size_t lookups = 0;            // isAllocated calls
  std::set<ip::Address> failReserve;  // reserve() throws for these
  std::set<ip::Address> stolen;       // reserve() finds these taken (a writer without the lock)
  int commits = 0;

  void hold(const char* addr, const char* id, const char* ifname = "eth0") {
    held[*ip::Address::parse(addr)] = Owner{id, ifname};
  }

  bool isAllocated(const ip::Address& a) override {
    ++lookups;
    return held.count(a) != 0;
  }
  std::optional<Owner> ownerOf(const ip::Address& a) override {
    auto it = held.find(a);
    return it == held.end() ? std::nullopt : it->second;
  }
  std::vector<ip::Address> addressesOf(const cni::Attachment& a) override {
    std::vector<ip::Address> out;
    for (const auto& [addr, o] : held) {
      if (o && o->holds(a)) out.push_back(addr);
    }
    return out;
  }
  std::optional<ip::Address> lastReserved(std::size_t id) override {
    auto it = last.find(id);
    return it == last.end() ? std::nullopt : std::optional(it->second);
  }
  bool reserve(const ip::Address& addr, const cni::Attachment& a) override {
    if (failReserve.count(addr) != 0) throw cni::Error(cni::Code::IoFailure, "disk full");
    if (stolen.count(addr) != 0) {
      held[addr] = Owner{"thief", "eth0"};
      return false;
    }
    if (held.count(addr) != 0) return false;
    held[addr] = Owner{a.containerId, a.ifname};
    return true;
  }
  void setLastReserved(std::size_t id, const ip::Address& addr) override { last[id] = addr; }
  void release(const ip::Address& addr) override { held.erase(addr); }
  std::vector<std::pair<ip::Address, std::optional<Owner>>> list() override {
    return {held.begin(), held.end()};
  }
  void commit() override { ++commits; }
};

}  // namespace dualstack::ipam::testing

// What the allocator needs from the allocation store. DiskStore implements it over host-local's
// on-disk layout; tests use an in-memory fake. All calls happen while the store is locked.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dualstack/cni/config.hpp"
#include "dualstack/ip/address.hpp"

namespace dualstack::ipam {

// Who holds an address. Files written by host-local before 0.7 hold only the container ID: then
// ifname is empty and the address belongs to every interface of that container.
struct Owner {
  std::string containerId;
  std::string ifname;

  bool legacy() const { return ifname.empty(); }
  bool holds(const cni::Attachment& a) const {
    return containerId == a.containerId && (legacy() || ifname == a.ifname);
  }
  std::string str() const { return legacy() ? containerId : containerId + "/" + ifname; }
  friend bool operator==(const Owner&, const Owner&) = default;
};

// host-local's file content for an owner: "containerID\r\nifname", or the bare ID (legacy).
std::string ownerFileContent(const cni::Attachment& a);
// Parses a per-IP file the way host-local matches it: surrounding whitespace trimmed, the ID and
// ifname separated by "\r\n". nullopt when the content names nobody: an empty file, or text
// that is not a valid container ID and ifname (a torn write, garbage).
std::optional<Owner> parseOwnerFile(std::string_view content);

class Store {
 public:
  virtual ~Store() = default;

  // Whether anyone (us, host-local, a person) holds the address.
  virtual bool isAllocated(const ip::Address& a) = 0;
  virtual std::optional<Owner> ownerOf(const ip::Address& a) = 0;
  // The addresses held by the attachment: those recorded for (containerID, ifname) and those of
  // legacy ID-only records of its container (host-local's GetByID matches both too).
  virtual std::vector<ip::Address> addressesOf(const cni::Attachment& a) = 0;
  // The same, for DEL: never trusting a cache that may lack an allocation someone else made, so
  // that nothing the attachment holds is missed. May cost a walk of the store.
  virtual std::vector<ip::Address> allAddressesOf(const cni::Attachment& a) {
    return addressesOf(a);
  }
  // The address handed out last from range set `rangeSetId`, if recorded.
  virtual std::optional<ip::Address> lastReserved(std::size_t rangeSetId) = 0;

  // Records `addr` for `a`; false when the address is held already (by anyone).
  virtual bool reserve(const ip::Address& addr, const cni::Attachment& a) = 0;
  virtual void setLastReserved(std::size_t rangeSetId, const ip::Address& addr) = 0;
  // Forgets `addr`; releasing an address nobody holds is fine.
  virtual void release(const ip::Address& addr) = 0;
  // Every allocation (one walk of the store). Addresses whose record names nobody have no owner.
  virtual std::vector<std::pair<ip::Address, std::optional<Owner>>> list() = 0;

  // Makes the changes visible to the next session and durable, and ends this one.
  virtual void commit() = 0;
};

}  // namespace dualstack::ipam

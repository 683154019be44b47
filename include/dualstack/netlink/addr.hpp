// Interface addresses.
#pragma once

#include <linux/if_addr.h>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dualstack/ip/address.hpp"
#include "dualstack/netlink/link.hpp"
#include "dualstack/netlink/socket.hpp"

namespace dualstack::netlink {

// Flags for addAddress (IFA_F_* from <linux/if_addr.h>):
//   IFA_F_NODAD          IPv6: usable at once, never "tentative" (no duplicate address detection)
//   IFA_F_NOPREFIXROUTE  no automatic route for the address's subnet (IPv4 needs Linux 4.4+)
// They are sent in IFA_FLAGS (32 bits) as well as in the 8-bit header field.

struct AddrInfo {
  ip::Prefix prefix;        // the local address with its prefix length
  int index = 0;            // interface
  std::uint32_t flags = 0;  // IFA_F_* (IFA_F_TENTATIVE, IFA_F_DADFAILED, IFA_F_NODAD, ...)
  std::uint8_t scope = 0;   // RT_SCOPE_*
  std::string label;        // IPv4 only: IFA_LABEL (the interface name or "eth0:1")

  bool tentative() const { return (flags & IFA_F_TENTATIVE) != 0; }
};

// Adds `prefix` (host bits set: the interface address, e.g. 10.244.1.5/24) to `link`. IPv4
// addresses get the subnet's broadcast address when the prefix is shorter than /31.
// Fails with Code::AlreadyExists if the address is already there.
void addAddress(Socket& sock, const Iface& link, const ip::Prefix& prefix, std::uint32_t flags = 0);

// Addresses of one interface (index > 0) or of all (index 0), optionally of one family.
std::vector<AddrInfo> listAddresses(Socket& sock, int index = 0,
                                    std::optional<ip::Family> family = std::nullopt);

// Returns false if the address was not there (EADDRNOTAVAIL) or the link is gone (ENODEV).
bool deleteAddress(Socket& sock, const Iface& link, const ip::Prefix& prefix);

}  // namespace dualstack::netlink

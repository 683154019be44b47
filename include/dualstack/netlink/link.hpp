// Links (network interfaces): the veth pair of a pod, lookups, up, delete, listing for GC.
//
// Every function works in the namespace of the Socket it is given; names and indexes are those of
// that namespace.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/netlink/socket.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::netlink {

using Mac = std::array<std::uint8_t, 6>;

// "aa:bb:cc:dd:ee:ff".
std::string macString(const Mac& mac);

// An interface in the namespace of some Socket: its index for requests, its name for messages.
struct Iface {
  int index = 0;
  std::string name;
};

// Longest interface name the kernel accepts (IFNAMSIZ - 1).
inline constexpr std::size_t kMaxIfaceName = 15;

// Throws sys::Error (Code::InvalidConfig) unless `name` is a valid interface name: 1-15 bytes, no
// '/', ':' or whitespace, not "." or "..". `what` names it in the message ("container ifname").
void validateIfaceName(std::string_view name, std::string_view what);

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;        // IFLA_INFO_KIND: "veth", "bridge", ...; empty for lo and physical NICs
  std::string alias;       // IFLA_IFALIAS; empty when unset
  std::optional<Mac> mac;  // absent for devices without an Ethernet address
  std::uint32_t mtu = 0;
  std::uint32_t flags = 0;  // IFF_* (IFF_UP, IFF_LOWER_UP, ...)
  // IFLA_LINK: for a veth, the ifindex of the other end, which lives in the namespace with id
  // linkNetnsId (as seen from this namespace) when that is set. 0 when the kernel sends none.
  int peerIndex = 0;
  std::optional<std::int32_t> linkNetnsId;

  bool up() const;
  Iface iface() const { return Iface{index, name}; }
};

struct VethSpec {
  std::string hostName;       // host end, in the namespace of the host Socket
  std::uint32_t hostMtu = 0;  // 0: kernel default (1500)
  std::string hostAlias;      // IFLA_IFALIAS of the host end (e.g. for GC); empty: none
  bool hostUp = true;         // bring the host end up in the create request itself
  // IFLA_INET6_ADDR_GEN_MODE of the host end, set with its alias before it is first brought up;
  // empty: the namespace's default. Needs IPv6 in the kernel.
  std::optional<std::uint8_t> hostAddrGenMode;
  std::string peerName;       // container end, e.g. CNI_IFNAME
  std::uint32_t peerMtu = 0;  // 0: kernel default
  // The pod's netns (Netns::fd()), the one the pod Socket was opened in; the peer is created
  // directly there.
  int peerNetnsFd = -1;
  std::optional<Mac> peerMac;  // default: a random locally administered address from the kernel
};

struct Veth {
  Iface host;  // in the host Socket's namespace
  Iface peer;  // in the pod Socket's namespace
  Mac peerMac;
};

// Creates the pair in one request with the peer placed in the pod namespace, sets the host end's
// alias and address generation mode (one request), and reads back the indexes and the peer's MAC
// through the pod socket: 2 or 3 requests. The peer is left down: bring it up with setLinkUp(pod,
// veth.peer) (a peer with IFF_UP in the create request fails with ENOTCONN because it is opened
// before it is paired). If a step after the creation fails, the pair is deleted again before the
// error is thrown. Errors: Code::AlreadyExists naming the end that exists; Code::InvalidConfig for
// bad names.
Veth createVeth(Socket& host, Socket& pod, const VethSpec& spec);

// std::nullopt when there is no such link.
std::optional<LinkInfo> getLink(Socket& sock, std::string_view name);
std::optional<LinkInfo> getLink(Socket& sock, int index);

// All links of the namespace; with `kind`, only those of that kind (filtered by the kernel where
// it can, and here).
std::vector<LinkInfo> listLinks(Socket& sock, std::string_view kind = {});

void setLinkUp(Socket& sock, const Iface& link);
void setLinkAlias(Socket& sock, const Iface& link, std::string_view alias);
void setLinkMtu(Socket& sock, const Iface& link, std::uint32_t mtu);

// IFLA_INET6_ADDR_GEN_MODE (IN6_ADDR_GEN_MODE_NONE: no IPv6 link-local address is generated when
// the link comes up, so no DAD or MLD traffic for it).
void setAddrGenMode(Socket& sock, const Iface& link, std::uint8_t mode);

// Deletes the link (for a veth, both ends). Returns false if it did not exist (ENODEV), which
// DEL treats as success.
bool deleteLink(Socket& sock, std::string_view name);
bool deleteLink(Socket& sock, int index);

}  // namespace dualstack::netlink

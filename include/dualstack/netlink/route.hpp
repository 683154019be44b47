// Routes of the main (or another) table, and the MTU of the default route's device.
#pragma once

#include <linux/rtnetlink.h>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/ip/address.hpp"
#include "dualstack/netlink/socket.hpp"

namespace dualstack::netlink {

struct Route {
  ip::Prefix dst;                      // host bits are cleared when sent
  std::optional<ip::Address> gateway;  // same family as dst
  int oif = 0;                         // output interface index; 0: let the kernel resolve
  // RT_SCOPE_*. Unset: RT_SCOPE_LINK for a unicast route without gateway (an on-link route such
  // as "10.244.1.1/32 dev eth0 scope link"), RT_SCOPE_UNIVERSE otherwise. IPv6 routes always
  // report RT_SCOPE_UNIVERSE.
  std::optional<std::uint8_t> scope;
  std::uint32_t table = RT_TABLE_MAIN;
  std::optional<std::uint32_t> metric;  // RTA_PRIORITY; the kernel uses 0 (IPv4) / 1024 (IPv6)
  std::optional<std::uint32_t> mtu;     // RTAX_MTU
  std::optional<std::uint32_t> advmss;  // RTAX_ADVMSS
  std::optional<ip::Address> prefsrc;   // RTA_PREFSRC
  std::uint8_t protocol = RTPROT_BOOT;
  std::uint8_t type = RTN_UNICAST;
  // Set on listed routes with several next hops (RTA_MULTIPATH); gateway/oif are the first hop's.
  bool multipath = false;

  // "dst dev <oif>" (scope link for IPv4) and "dst via gw dev <oif>".
  static Route onLink(const ip::Prefix& dst, int oif);
  static Route via(const ip::Prefix& dst, const ip::Address& gateway, int oif);

  std::uint8_t effectiveScope() const;
};

// "10.244.1.0/24 via 10.244.1.1 dev eth0 metric 100 table 5", with `dev` naming route.oif.
std::string describe(const Route& route, std::string_view dev = {});

enum class IfExists {
  Fail,             // Code::AlreadyExists if a route for the same destination exists
  AcceptIdentical,  // success if the existing route has the same gateway, oif, table (and
                    // metric, type, mtu and advmss where given); else Code::AlreadyExists
};

// Adds the route (NLM_F_CREATE|NLM_F_EXCL). `dev` names route.oif in messages.
void addRoute(Socket& sock, const Route& route, std::string_view dev = {},
              IfExists ifExists = IfExists::Fail);

// Replaces the route with route's destination, table and metric, or creates it
// (NLM_F_CREATE|NLM_F_REPLACE): the kernel swaps the next hop in one step, so traffic to the
// destination never sees it missing. The kernel picks the route to replace by destination, table
// and metric alone, whatever its protocol: callers that must not replace someone else's route
// check the route they replace first. Errors as addRoute.
void replaceRoute(Socket& sock, const Route& route, std::string_view dev = {});

// Deletes the route matching dst, table and, where given, gateway, oif and metric; with
// `protocol`, only a route of that protocol (the kernel compares it, so a route someone else
// installed for the same destination is never removed). Returns false if there was none (ESRCH,
// or ENOENT for a missing table) or the device is gone (ENODEV).
bool deleteRoute(Socket& sock, const Route& route, std::string_view dev = {},
                 std::optional<std::uint8_t> protocol = std::nullopt);

// Routes of one family in `table`, optionally only those through `oif`. Cached and cloned
// routes are not included; local, broadcast and multicast ones are, with their type.
std::vector<Route> listRoutes(Socket& sock, ip::Family family, std::uint32_t table = RT_TABLE_MAIN,
                              int oif = 0);

// The route the kernel would use for `dst` (RTM_GETROUTE): with fibMatch (RTM_F_FIB_MATCH) the
// entry of the routing table as it was installed (destination prefix, protocol, gateway), else
// the resolved result for that one address. std::nullopt when there is no route to it
// (ENETUNREACH, EHOSTUNREACH) or it is unreachable, prohibited or a blackhole.
std::optional<Route> lookupRoute(Socket& sock, const ip::Address& dst, bool fibMatch = true);

// The MTU to use behind the socket namespace's default route: that of the device of the IPv4
// default route with the lowest metric, else of the IPv6 one; the route's own MTU metric if it is
// lower. std::nullopt without a default route.
std::optional<std::uint32_t> defaultRouteMtu(Socket& sock);

}  // namespace dualstack::netlink

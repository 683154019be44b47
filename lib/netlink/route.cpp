#include "dualstack/netlink/route.hpp"

#include <sys/socket.h>
#include <algorithm>
#include <cerrno>

#include "attrs.hpp"
#include "dualstack/netlink/link.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::netlink {

using sys::Code;
using sys::Error;

namespace {

std::string devName(const Route& r, std::string_view dev) {
  if (!dev.empty()) return std::string(dev);
  return "#" + std::to_string(r.oif);
}

rtmsg routeHeader(const Route& r) {
  rtmsg rt{};
  rt.rtm_family = detail::afOf(r.dst.family());
  rt.rtm_dst_len = static_cast<unsigned char>(r.dst.length());
  rt.rtm_table = r.table < 256 ? static_cast<unsigned char>(r.table)
                               : static_cast<unsigned char>(RT_TABLE_UNSPEC);
  return rt;
}

void putSelectors(Message& m, const Route& r) {
  if (r.dst.length() > 0) m.putAddress(RTA_DST, r.dst.network().address());
  m.putU32(RTA_TABLE, r.table);
  if (r.gateway) m.putAddress(RTA_GATEWAY, *r.gateway);
  if (r.oif > 0) m.putU32(RTA_OIF, static_cast<std::uint32_t>(r.oif));
  if (r.metric) m.putU32(RTA_PRIORITY, *r.metric);
}

void checkFamilies(const Route& r, std::string_view what) {
  const auto bad = [&](const char* field) {
    throw Error(Code::Internal, std::string(what) + " " + describe(r) + ": " + field +
                                    " is not of the destination's address family");
  };
  if (r.gateway && r.gateway->family() != r.dst.family()) bad("gateway");
  if (r.prefsrc && r.prefsrc->family() != r.dst.family()) bad("preferred source");
}

std::optional<Route> parseRoute(const nlmsghdr& hdr) {
  if (hdr.nlmsg_type != RTM_NEWROUTE) return std::nullopt;
  detail::Attrs<RTA_MAX> a;
  if (!detail::parse<rtmsg>(hdr, a)) return std::nullopt;
  const auto h = detail::header<rtmsg>(hdr);
  if ((h.rtm_flags & RTM_F_CLONED) != 0) return std::nullopt;
  const auto fam = detail::familyOf(h.rtm_family);
  if (!fam) return std::nullopt;
  const ip::Family f = *fam;
  Route r;
  const ip::Address zero = f == ip::Family::V4 ? ip::Address::v4(0) : ip::Address::v6(0);
  r.dst = ip::Prefix(detail::address(a[RTA_DST], f).value_or(zero), h.rtm_dst_len);
  r.gateway = detail::address(a[RTA_GATEWAY], f);
  r.oif = static_cast<int>(detail::u32(a[RTA_OIF]).value_or(0));
  r.scope = h.rtm_scope;
  r.table = detail::u32(a[RTA_TABLE]).value_or(h.rtm_table);
  r.metric = detail::u32(a[RTA_PRIORITY]);
  r.prefsrc = detail::address(a[RTA_PREFSRC], f);
  r.protocol = h.rtm_protocol;
  r.type = h.rtm_type;
  detail::Attrs<RTAX_MAX> metrics;
  if (detail::parseNested(a[RTA_METRICS], metrics)) {
    r.mtu = detail::u32(metrics[RTAX_MTU]);
    r.advmss = detail::u32(metrics[RTAX_ADVMSS]);
  }
  if (const nlattr* mp = a[RTA_MULTIPATH]; mp != nullptr) {
    r.multipath = true;
    if (detail::length(mp) >= sizeof(rtnexthop)) {
      rtnexthop nh;
      std::memcpy(&nh, nla_data(mp), sizeof nh);
      if (r.oif == 0) r.oif = nh.rtnh_ifindex;
      const std::size_t hopLen = std::min<std::size_t>(nh.rtnh_len, detail::length(mp));
      constexpr std::size_t kHopHdr = detail::align4(sizeof(rtnexthop));
      if (!r.gateway && hopLen > kHopHdr) {
        // The hop's own attributes follow its rtnexthop header.
        auto* attrs =
            reinterpret_cast<nlattr*>(static_cast<unsigned char*>(nla_data(mp)) + kHopHdr);
        detail::Attrs<RTA_MAX> hop;
        if (nla_parse(hop.tb.data(), RTA_MAX, attrs, static_cast<int>(hopLen - kHopHdr), nullptr) ==
            0) {
          r.gateway = detail::address(hop[RTA_GATEWAY], f);
        }
      }
    }
  }
  return r;
}

// Same destination and next hop; metric, type, MTU and advmss only where `want` sets them.
bool matches(const Route& want, const Route& have) {
  if (want.dst.network() != have.dst.network()) return false;
  if (want.gateway != have.gateway) return false;
  if (want.oif > 0 && want.oif != have.oif) return false;
  if (want.table != have.table) return false;
  if (want.type != have.type) return false;
  if (want.metric && want.metric != have.metric) return false;
  if (want.mtu && want.mtu != have.mtu) return false;
  if (want.advmss && want.advmss != have.advmss) return false;
  return true;
}

}  // namespace

Route Route::onLink(const ip::Prefix& dst, int oif) {
  Route r;
  r.dst = dst;
  r.oif = oif;
  return r;
}

Route Route::via(const ip::Prefix& dst, const ip::Address& gateway, int oif) {
  Route r;
  r.dst = dst;
  r.gateway = gateway;
  r.oif = oif;
  return r;
}

std::uint8_t Route::effectiveScope() const {
  if (scope) return *scope;
  return (!gateway && type == RTN_UNICAST) ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
}

std::string describe(const Route& r, std::string_view dev) {
  std::string s = r.dst.network().str();
  if (r.gateway) s += " via " + r.gateway->str();
  if (r.oif > 0 || !dev.empty()) s += " dev " + devName(r, dev);
  if (r.effectiveScope() == RT_SCOPE_LINK && r.dst.family() == ip::Family::V4) s += " scope link";
  if (r.metric) s += " metric " + std::to_string(*r.metric);
  if (r.table != RT_TABLE_MAIN) s += " table " + std::to_string(r.table);
  if (r.mtu) s += " mtu " + std::to_string(*r.mtu);
  if (r.advmss) s += " advmss " + std::to_string(*r.advmss);
  return s;
}

namespace {

void newRoute(Socket& sock, const Route& route, std::string_view dev, IfExists ifExists,
              bool replace) {
  const char* verb = replace ? "replace route" : "add route";
  checkFamilies(route, verb);
  Message m(RTM_NEWROUTE, NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL));
  rtmsg rt = routeHeader(route);
  rt.rtm_protocol = route.protocol;
  rt.rtm_scope = route.effectiveScope();
  rt.rtm_type = route.type;
  m.append(rt);
  putSelectors(m, route);
  if (route.prefsrc) m.putAddress(RTA_PREFSRC, *route.prefsrc);
  if (route.mtu || route.advmss) {
    const auto metrics = m.beginNest(RTA_METRICS);
    if (route.mtu) m.putU32(RTAX_MTU, *route.mtu);
    if (route.advmss) m.putU32(RTAX_ADVMSS, *route.advmss);
    m.endNest(metrics);
  }
  const KernelStatus st = sock.request(m);
  if (st.ok()) return;

  const std::string what = std::string(verb) + " " + describe(route, dev);
  std::string hint;
  switch (st.err) {
    case EEXIST: {
      std::string existing;
      for (const Route& r : listRoutes(sock, route.dst.family(), route.table)) {
        if (r.dst.network() != route.dst.network()) continue;
        if (ifExists == IfExists::AcceptIdentical && matches(route, r)) return;
        if (!existing.empty()) existing += "; ";
        existing += describe(r);
      }
      hint = existing.empty() ? "a route to " + route.dst.network().str() + " already exists"
                              : "existing: " + existing;
      break;
    }
    case ENETUNREACH:   // IPv4
    case EHOSTUNREACH:  // IPv6
      if (route.gateway) {
        hint = "gateway " + route.gateway->str() + " is not reachable on " + devName(route, dev) +
               "; it needs an on-link route first";
      }
      break;
    case ENETDOWN:
      hint = "is " + devName(route, dev) + " up?";
      break;
    case ENODEV:
      hint = "the link is gone";
      break;
    case EACCES:
    case EPERM:
      if (route.dst.family() == ip::Family::V6) {
        hint = "is IPv6 disabled in the " + sock.where() + " (net.ipv6.conf." +
               devName(route, dev) + ".disable_ipv6=1)?";
      }
      break;
    case EAFNOSUPPORT:
      hint = "is IPv6 disabled in the kernel (ipv6.disable=1)?";
      break;
    default:
      break;
  }
  throw sock.error(what, st, hint);
}

}  // namespace

void addRoute(Socket& sock, const Route& route, std::string_view dev, IfExists ifExists) {
  newRoute(sock, route, dev, ifExists, false);
}

void replaceRoute(Socket& sock, const Route& route, std::string_view dev) {
  newRoute(sock, route, dev, IfExists::Fail, true);
}

bool deleteRoute(Socket& sock, const Route& route, std::string_view dev,
                 std::optional<std::uint8_t> protocol) {
  checkFamilies(route, "delete route");
  Message m(RTM_DELROUTE, 0);
  rtmsg rt = routeHeader(route);
  // Any scope and type; any protocol (0) unless one is asked for.
  rt.rtm_scope = RT_SCOPE_NOWHERE;
  rt.rtm_protocol = protocol.value_or(RTPROT_UNSPEC);
  m.append(rt);
  putSelectors(m, route);
  const KernelStatus st = sock.request(m);
  if (st.err == ESRCH || st.err == ENODEV || st.err == ENOENT) return false;
  sock.check("delete route " + describe(route, dev), st);
  return true;
}

std::vector<Route> listRoutes(Socket& sock, ip::Family family, std::uint32_t table, int oif) {
  Message m(RTM_GETROUTE, NLM_F_DUMP);
  rtmsg rt{};
  rt.rtm_family = detail::afOf(family);
  rt.rtm_table =
      table < 256 ? static_cast<unsigned char>(table) : static_cast<unsigned char>(RT_TABLE_UNSPEC);
  m.append(rt);
  // Filters with NETLINK_GET_STRICT_CHK (Linux 4.20+); older kernels ignore them.
  m.putU32(RTA_TABLE, table);
  if (oif > 0) m.putU32(RTA_OIF, static_cast<std::uint32_t>(oif));
  std::vector<Route> out;
  const KernelStatus st = detail::dump(
      sock, m, [&] { out.clear(); },
      [&](const nlmsghdr& hdr) {
        auto r = parseRoute(hdr);
        if (!r || r->dst.family() != family || r->table != table) return;
        if (oif > 0 && r->oif != oif) return;
        out.push_back(*r);
      });
  // A filtered dump of a table that does not exist yet.
  if (st.err == ENOENT) return {};
  sock.check(std::string("list IPv") + std::string(ip::familyName(family)) + " routes", st);
  return out;
}

std::optional<Route> lookupRoute(Socket& sock, const ip::Address& dst, bool fibMatch) {
  Message m(RTM_GETROUTE, 0);
  rtmsg rt{};
  rt.rtm_family = detail::afOf(dst.family());
  rt.rtm_dst_len = static_cast<unsigned char>(dst.bits());
  if (fibMatch) rt.rtm_flags = RTM_F_FIB_MATCH;
  m.append(rt);
  m.putAddress(RTA_DST, dst);
  std::optional<Route> out;
  const KernelStatus st = sock.request(m, [&](const nlmsghdr& hdr) {
    if (!out) out = parseRoute(hdr);
  });
  // No route, or a route of type unreachable or prohibit (ENETUNREACH, EHOSTUNREACH, EACCES),
  // or a blackhole (EINVAL).
  if (st.err == ENETUNREACH || st.err == EHOSTUNREACH || st.err == EACCES || st.err == EINVAL) {
    return std::nullopt;
  }
  sock.check("look up the route to " + dst.str(), st);
  return out;
}

std::optional<std::uint32_t> defaultRouteMtu(Socket& sock) {
  for (const ip::Family f : {ip::Family::V4, ip::Family::V6}) {
    std::optional<Route> best;
    for (const Route& r : listRoutes(sock, f)) {
      if (r.dst.length() != 0 || r.type != RTN_UNICAST || r.oif <= 0) continue;
      if (!best || r.metric.value_or(0) < best->metric.value_or(0)) best = r;
    }
    if (!best) continue;
    auto link = getLink(sock, best->oif);
    if (!link) continue;
    std::uint32_t mtu = link->mtu;
    if (best->mtu && *best->mtu > 0 && *best->mtu < mtu) mtu = *best->mtu;
    return mtu;
  }
  return std::nullopt;
}

}  // namespace dualstack::netlink

#include "dualstack/netlink/link.hpp"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstdio>

#include "attrs.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::netlink {

using sys::Code;
using sys::Error;

std::string macString(const Mac& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

bool LinkInfo::up() const { return (flags & IFF_UP) != 0; }

void validateIfaceName(std::string_view name, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Error(Code::InvalidConfig, "invalid " + std::string(what) + " \"" + std::string(name) +
                                          "\": " + std::string(why));
  };
  if (name.empty()) throw bad("empty");
  if (name.size() > kMaxIfaceName) {
    throw bad("longer than " + std::to_string(kMaxIfaceName) + " characters");
  }
  if (name == "." || name == "..") throw bad("not a valid interface name");
  for (const char c : name) {
    if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
        c == '\f' || c == '\0') {
      throw bad("contains '/', ':', whitespace or NUL");
    }
  }
}

namespace {

ifinfomsg linkHeader(int index = 0) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  return ifi;
}

std::optional<LinkInfo> parseLink(const nlmsghdr& hdr) {
  if (hdr.nlmsg_type != RTM_NEWLINK) return std::nullopt;
  detail::Attrs<IFLA_MAX> a;
  if (!detail::parse<ifinfomsg>(hdr, a)) return std::nullopt;
  const auto ifi = detail::header<ifinfomsg>(hdr);
  LinkInfo l;
  l.index = ifi.ifi_index;
  l.flags = ifi.ifi_flags;
  l.name = detail::str(a[IFLA_IFNAME]);
  l.alias = detail::str(a[IFLA_IFALIAS]);
  l.mtu = detail::u32(a[IFLA_MTU]).value_or(0);
  if (const nlattr* mac = a[IFLA_ADDRESS]; mac != nullptr && detail::length(mac) == 6) {
    Mac m;
    std::memcpy(m.data(), nla_data(mac), m.size());
    l.mac = m;
  }
  if (auto link = detail::u32(a[IFLA_LINK])) l.peerIndex = static_cast<int>(*link);
  if (auto nsid = detail::u32(a[IFLA_LINK_NETNSID]))
    l.linkNetnsId = static_cast<std::int32_t>(*nsid);
  detail::Attrs<IFLA_INFO_MAX> info;
  if (detail::parseNested(a[IFLA_LINKINFO], info)) l.kind = detail::str(info[IFLA_INFO_KIND]);
  return l;
}

std::optional<LinkInfo> getLinkBy(Socket& sock, int index, std::string_view name) {
  Message m(RTM_GETLINK, 0);
  m.append(linkHeader(index));
  if (index == 0) m.putString(IFLA_IFNAME, name);
  m.putU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::optional<LinkInfo> out;
  const KernelStatus st = sock.request(m, [&](const nlmsghdr& hdr) {
    if (!out) out = parseLink(hdr);
  });
  if (st.err == ENODEV) return std::nullopt;
  const std::string what =
      index == 0 ? "look up link " + std::string(name) : "look up link #" + std::to_string(index);
  sock.check(what, st);
  if (!out) throw Error(Code::Internal, what + " in " + sock.where() + ": no usable reply");
  return out;
}

bool deleteLinkBy(Socket& sock, int index, std::string_view name) {
  Message m(RTM_DELLINK, 0);
  m.append(linkHeader(index));
  if (index == 0) m.putString(IFLA_IFNAME, name);
  const KernelStatus st = sock.request(m);
  if (st.err == ENODEV) return false;
  sock.check(
      index == 0 ? "delete link " + std::string(name) : "delete link #" + std::to_string(index),
      st);
  return true;
}

void setLink(Socket& sock, const Iface& link, std::string_view what,
             const std::function<void(Message&)>& fill, std::uint32_t flags = 0,
             std::uint32_t change = 0) {
  Message m(RTM_SETLINK, 0);
  ifinfomsg ifi = linkHeader(link.index);
  ifi.ifi_flags = flags;
  ifi.ifi_change = change;
  m.append(ifi);
  if (fill) fill(m);
  const KernelStatus st = sock.request(m);
  sock.check(std::string(what) + " " + link.name, st, st.err == ENODEV ? "the link is gone" : "");
}

void putAddrGenMode(Message& m, std::uint8_t mode) {
  const auto spec = m.beginNest(IFLA_AF_SPEC);
  const auto inet6 = m.beginNest(AF_INET6);
  m.putU8(IFLA_INET6_ADDR_GEN_MODE, mode);
  m.endNest(inet6);
  m.endNest(spec);
}

Veth finishVeth(Socket& host, Socket& pod, const VethSpec& spec, const std::string& what) {
  // IFLA_IFALIAS in a create request is silently ignored (rtnl_create_link does not apply it), and
  // so is IFLA_AF_SPEC: both take one request of their own.
  if (!spec.hostAlias.empty() || spec.hostAddrGenMode) {
    Message am(RTM_SETLINK, 0);
    am.append(linkHeader());
    am.putString(IFLA_IFNAME, spec.hostName);
    if (!spec.hostAlias.empty()) am.putString(IFLA_IFALIAS, spec.hostAlias);
    if (spec.hostAddrGenMode) putAddrGenMode(am, *spec.hostAddrGenMode);
    host.check("set alias and IPv6 address generation mode of " + spec.hostName, host.request(am));
  }

  // One lookup in the pod gives the peer's index and MAC, and through IFLA_LINK the host end's
  // index.
  auto peerInfo = getLinkBy(pod, 0, spec.peerName);
  if (!peerInfo || !peerInfo->mac) {
    throw Error(Code::Internal, what + ": the new peer " + spec.peerName + " is not visible in " +
                                    pod.where() + " (peerNetnsFd is not that namespace?)");
  }
  Veth out;
  out.peer = peerInfo->iface();
  out.peerMac = *peerInfo->mac;
  if (peerInfo->peerIndex > 0) {
    out.host = Iface{peerInfo->peerIndex, spec.hostName};
  } else {
    auto hostInfo = getLinkBy(host, 0, spec.hostName);
    if (!hostInfo) {
      throw Error(Code::Internal, what + ": the new link is not visible in " + host.where());
    }
    out.host = hostInfo->iface();
  }
  return out;
}

}  // namespace

Veth createVeth(Socket& host, Socket& pod, const VethSpec& spec) {
  validateIfaceName(spec.hostName, "host interface name");
  validateIfaceName(spec.peerName, "container interface name");
  if (spec.peerNetnsFd < 0) {
    throw Error(Code::Internal, "create veth " + spec.hostName + ": no pod network namespace");
  }

  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi = linkHeader();
  if (spec.hostUp) {
    ifi.ifi_flags = IFF_UP;
    ifi.ifi_change = IFF_UP;
  }
  m.append(ifi);
  m.putString(IFLA_IFNAME, spec.hostName);
  if (spec.hostMtu != 0) m.putU32(IFLA_MTU, spec.hostMtu);
  const auto linkinfo = m.beginNest(IFLA_LINKINFO);
  m.putString(IFLA_INFO_KIND, "veth");
  const auto data = m.beginNest(IFLA_INFO_DATA);
  const auto peer = m.beginNest(VETH_INFO_PEER);
  // The peer's attributes are a complete link description: its own ifinfomsg, then attributes.
  m.append(linkHeader());
  m.putString(IFLA_IFNAME, spec.peerName);
  if (spec.peerMtu != 0) m.putU32(IFLA_MTU, spec.peerMtu);
  m.putU32(IFLA_NET_NS_FD, static_cast<std::uint32_t>(spec.peerNetnsFd));
  if (spec.peerMac) m.putBytes(IFLA_ADDRESS, spec.peerMac->data(), spec.peerMac->size());
  m.endNest(peer);
  m.endNest(data);
  m.endNest(linkinfo);

  const std::string what =
      "create veth " + spec.hostName + " (peer " + spec.peerName + " in " + pod.where() + ")";
  const KernelStatus st = host.request(m);
  if (!st.ok()) {
    std::string hint;
    switch (st.err) {
      case EEXIST:
        // One request creates two names in two namespaces; say which one is taken.
        if (auto existing = getLink(host, spec.hostName)) {
          hint = "an interface named " + spec.hostName + " already exists in " + host.where();
          if (!existing->alias.empty()) hint += " (alias \"" + existing->alias + "\")";
        } else if (getLink(pod, spec.peerName)) {
          hint = "an interface named " + spec.peerName + " already exists in " + pod.where();
        }
        break;
      case EOPNOTSUPP:
        hint = "is the veth module loaded?";
        break;
      default:
        break;
    }
    throw host.error(what, st, hint);
  }

  // Past this point the pair exists; a failure must not leave it behind without a Veth to undo.
  try {
    return finishVeth(host, pod, spec, what);
  } catch (...) {
    try {
      deleteLinkBy(host, 0, spec.hostName);
    } catch (...) {
      // The original error is the one to report.
    }
    throw;
  }
}

std::optional<LinkInfo> getLink(Socket& sock, std::string_view name) {
  if (name.empty() || name.size() > kMaxIfaceName) return std::nullopt;
  return getLinkBy(sock, 0, name);
}

std::optional<LinkInfo> getLink(Socket& sock, int index) {
  if (index <= 0) return std::nullopt;
  return getLinkBy(sock, index, {});
}

std::vector<LinkInfo> listLinks(Socket& sock, std::string_view kind) {
  Message m(RTM_GETLINK, NLM_F_DUMP);
  m.append(linkHeader());
  m.putU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  if (!kind.empty()) {
    const auto info = m.beginNest(IFLA_LINKINFO);
    m.putString(IFLA_INFO_KIND, kind);
    m.endNest(info);
  }
  std::vector<LinkInfo> out;
  const KernelStatus st = detail::dump(
      sock, m, [&] { out.clear(); },
      [&](const nlmsghdr& hdr) {
        auto l = parseLink(hdr);
        if (l && (kind.empty() || l->kind == kind)) out.push_back(std::move(*l));
      });
  sock.check("list links", st);
  return out;
}

void setLinkUp(Socket& sock, const Iface& link) {
  setLink(sock, link, "set up", {}, IFF_UP, IFF_UP);
}

void setLinkAlias(Socket& sock, const Iface& link, std::string_view alias) {
  setLink(sock, link, "set alias of", [&](Message& m) { m.putString(IFLA_IFALIAS, alias); });
}

void setLinkMtu(Socket& sock, const Iface& link, std::uint32_t mtu) {
  setLink(sock, link, "set MTU " + std::to_string(mtu) + " of",
          [&](Message& m) { m.putU32(IFLA_MTU, mtu); });
}

void setAddrGenMode(Socket& sock, const Iface& link, std::uint8_t mode) {
  setLink(sock, link, "set IPv6 address generation mode of",
          [&](Message& m) { putAddrGenMode(m, mode); });
}

bool deleteLink(Socket& sock, std::string_view name) {
  if (name.empty() || name.size() > kMaxIfaceName) return false;
  return deleteLinkBy(sock, 0, name);
}

bool deleteLink(Socket& sock, int index) {
  if (index <= 0) return false;
  return deleteLinkBy(sock, index, {});
}

}  // namespace dualstack::netlink

#include "dualstack/netlink/addr.hpp"

#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <cerrno>

#include "attrs.hpp"

namespace dualstack::netlink {

namespace {

ifaddrmsg addrHeader(const Iface& link, const ip::Prefix& prefix) {
  ifaddrmsg ifa{};
  ifa.ifa_family = detail::afOf(prefix.family());
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefix.length());
  ifa.ifa_index = static_cast<std::uint32_t>(link.index);
  return ifa;
}

std::string addrHint(const KernelStatus& st, const Socket& sock, const Iface& link,
                     const ip::Prefix& prefix) {
  const bool v6 = prefix.family() == ip::Family::V6;
  switch (st.err) {
    case EEXIST:
      return "the address is already assigned";
    case EACCES:
    case EPERM:
      // EACCES is what the kernel answers when net.ipv6.conf.<dev>.disable_ipv6=1.
      if (v6) {
        return "is IPv6 disabled in the " + sock.where() + " (net.ipv6.conf." + link.name +
               ".disable_ipv6=1)?";
      }
      return "the plugin needs CAP_NET_ADMIN in that network namespace";
    case EAFNOSUPPORT:
      return v6 ? "is IPv6 disabled in the kernel (ipv6.disable=1)?" : "";
    case ENODEV:
      return "the link is gone";
    default:
      return {};
  }
}

}  // namespace

void addAddress(Socket& sock, const Iface& link, const ip::Prefix& prefix, std::uint32_t flags) {
  Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa = addrHeader(link, prefix);
  ifa.ifa_flags = static_cast<unsigned char>(flags & 0xff);
  m.append(ifa);
  m.putAddress(IFA_LOCAL, prefix.address());
  m.putAddress(IFA_ADDRESS, prefix.address());
  if (prefix.family() == ip::Family::V4 && prefix.length() < 31) {
    m.putAddress(IFA_BROADCAST, prefix.last());
  }
  if (flags > 0xff) m.putU32(IFA_FLAGS, flags);
  const KernelStatus st = sock.request(m);
  if (!st.ok()) {
    throw sock.error("add address " + prefix.str() + " to " + link.name, st,
                     addrHint(st, sock, link, prefix));
  }
}

std::vector<AddrInfo> listAddresses(Socket& sock, int index, std::optional<ip::Family> family) {
  Message m(RTM_GETADDR, NLM_F_DUMP);
  ifaddrmsg ifa{};
  ifa.ifa_family = family ? detail::afOf(*family) : AF_UNSPEC;
  // Honoured as a filter with NETLINK_GET_STRICT_CHK (Linux 4.20+).
  ifa.ifa_index = static_cast<std::uint32_t>(index);
  m.append(ifa);
  std::vector<AddrInfo> out;
  const KernelStatus st = detail::dump(
      sock, m, [&] { out.clear(); },
      [&](const nlmsghdr& hdr) {
        if (hdr.nlmsg_type != RTM_NEWADDR) return;
        detail::Attrs<IFA_MAX> a;
        if (!detail::parse<ifaddrmsg>(hdr, a)) return;
        const auto h = detail::header<ifaddrmsg>(hdr);
        if (index != 0 && static_cast<int>(h.ifa_index) != index) return;
        const auto fam = detail::familyOf(h.ifa_family);
        if (!fam) return;
        const ip::Family f = *fam;
        if (family && *family != f) return;
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
        // links and the same as IFA_LOCAL otherwise. IPv6 sends only IFA_ADDRESS unless there is
        // a peer.
        auto addr = detail::address(a[IFA_LOCAL], f);
        if (!addr) addr = detail::address(a[IFA_ADDRESS], f);
        if (!addr) return;
        AddrInfo info;
        info.prefix = ip::Prefix(*addr, h.ifa_prefixlen);
        info.index = static_cast<int>(h.ifa_index);
        info.flags = detail::u32(a[IFA_FLAGS]).value_or(h.ifa_flags);
        info.scope = h.ifa_scope;
        info.label = detail::str(a[IFA_LABEL]);
        out.push_back(std::move(info));
      });
  sock.check("list addresses", st);
  return out;
}

bool deleteAddress(Socket& sock, const Iface& link, const ip::Prefix& prefix) {
  Message m(RTM_DELADDR, 0);
  m.append(addrHeader(link, prefix));
  m.putAddress(IFA_LOCAL, prefix.address());
  m.putAddress(IFA_ADDRESS, prefix.address());
  const KernelStatus st = sock.request(m);
  if (st.err == EADDRNOTAVAIL || st.err == ENODEV) return false;
  sock.check("delete address " + prefix.str() + " from " + link.name, st,
             addrHint(st, sock, link, prefix));
  return true;
}

}  // namespace dualstack::netlink

// Private helpers of lib/netlink: reading attributes out of kernel replies and dumping with
// retries. Not installed; include only from lib/netlink/*.cpp.
#pragma once

#include <linux/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <sys/socket.h>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "dualstack/ip/address.hpp"
#include "dualstack/netlink/socket.hpp"

namespace dualstack::netlink::detail {

inline unsigned char afOf(ip::Family f) { return f == ip::Family::V4 ? AF_INET : AF_INET6; }

inline std::optional<ip::Family> familyOf(unsigned char af) {
  if (af == AF_INET) return ip::Family::V4;
  if (af == AF_INET6) return ip::Family::V6;
  return std::nullopt;
}

// The attributes of one message, indexed by type; types above Max are ignored.
// Netlink alignment and header sizes, without the <linux/netlink.h> macros' C casts.
constexpr std::size_t align4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }
constexpr std::size_t kMsgHdrLen = align4(sizeof(nlmsghdr));
constexpr std::size_t kAttrHdrLen = align4(sizeof(nlattr));

inline const unsigned char* payload(const nlmsghdr& hdr) {
  return reinterpret_cast<const unsigned char*>(&hdr) + kMsgHdrLen;
}

template <int Max>
struct Attrs {
  std::array<nlattr*, static_cast<std::size_t>(Max) + 1> tb{};
  nlattr* operator[](int type) const { return tb[static_cast<std::size_t>(type)]; }
};

// Parses the attributes following a fixed header of `Header` type. False if the message is too
// short or malformed.
template <class Header, int Max>
bool parse(const nlmsghdr& hdr, Attrs<Max>& out) {
  return nlmsg_parse(const_cast<nlmsghdr*>(&hdr), static_cast<int>(sizeof(Header)), out.tb.data(),
                     Max, nullptr) == 0;
}

template <int Max>
bool parseNested(const nlattr* nest, Attrs<Max>& out) {
  return nest != nullptr &&
         nla_parse_nested(out.tb.data(), Max, const_cast<nlattr*>(nest), nullptr) == 0;
}

// The fixed header, copied out (the payload need not be aligned for T).
template <class Header>
Header header(const nlmsghdr& hdr) {
  Header h{};
  std::memcpy(&h, payload(hdr), sizeof h);
  return h;
}

inline std::size_t length(const nlattr* a) { return static_cast<std::size_t>(nla_len(a)); }

inline std::optional<std::uint32_t> u32(const nlattr* a) {
  if (a == nullptr || length(a) < sizeof(std::uint32_t)) return std::nullopt;
  std::uint32_t v;
  std::memcpy(&v, nla_data(a), sizeof v);
  return v;
}

inline std::optional<std::uint8_t> u8(const nlattr* a) {
  if (a == nullptr || length(a) < 1) return std::nullopt;
  return *static_cast<const std::uint8_t*>(nla_data(a));
}

inline std::string str(const nlattr* a) {
  if (a == nullptr) return {};
  const auto* s = static_cast<const char*>(nla_data(a));
  return std::string(s, strnlen(s, length(a)));
}

inline std::optional<ip::Address> address(const nlattr* a, ip::Family family) {
  const std::size_t want = family == ip::Family::V4 ? 4 : 16;
  if (a == nullptr || length(a) != want) return std::nullopt;
  return ip::Address::fromBytes(family, static_cast<const unsigned char*>(nla_data(a)));
}

// Runs a dump, starting over (after `reset`) when the kernel flags it interrupted because the
// tables changed while being read; after a few attempts the last, possibly inconsistent, result
// stands.
template <class Reset>
KernelStatus dump(Socket& sock, Message& msg, Reset&& reset, const Socket::ReplyHandler& onReply) {
  KernelStatus st;
  for (int attempt = 0; attempt < 5; ++attempt) {
    reset();
    st = sock.request(msg, onReply);
    if (!st.interrupted) break;
  }
  return st;
}

}  // namespace dualstack::netlink::detail

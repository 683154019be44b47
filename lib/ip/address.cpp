#include "dualstack/ip/address.hpp"

#include <arpa/inet.h>

#include <array>

namespace dualstack::ip {

namespace {
u128 widthMask(Family f) { return f == Family::V4 ? u128{0xffffffffU} : ~u128{0}; }
}  // namespace

std::string_view familyName(Family f) { return f == Family::V4 ? "4" : "6"; }

std::optional<Address> Address::parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; addresses are short. It would stop at a NUL inside
  // the text (JSON strings may hold one, "\u0000") and accept what comes before it.
  if (text.empty() || text.size() > INET6_ADDRSTRLEN || text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  char buf[INET6_ADDRSTRLEN + 1];
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  std::array<unsigned char, 16> bytes{};
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, bytes.data()) != 1) return std::nullopt;
    return fromBytes(Family::V4, bytes.data());
  }
  if (inet_pton(AF_INET6, buf, bytes.data()) != 1) return std::nullopt;
  return fromBytes(Family::V6, bytes.data());
}

Address Address::fromBytes(Family f, const unsigned char* bytes) {
  const int n = f == Family::V4 ? 4 : 16;
  u128 v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | bytes[i];
  return Address(f, v);
}

void Address::toBytes(unsigned char* out) const {
  const int n = isV4() ? 4 : 16;
  u128 v = value_;
  for (int i = n - 1; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
}

std::string Address::str() const {
  std::array<unsigned char, 16> bytes{};
  toBytes(bytes.data());
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(isV4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

Address Address::plus(u128 n) const { return Address(family_, (value_ + n) & widthMask(family_)); }
Address Address::minus(u128 n) const { return Address(family_, (value_ - n) & widthMask(family_)); }

Prefix::Prefix(Address addr, int len) : addr_(addr), len_(len) {}

std::optional<Prefix> Prefix::parse(std::string_view text, bool allowBare) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    if (!allowBare) return std::nullopt;
    auto a = Address::parse(text);
    if (!a) return std::nullopt;
    return host(*a);
  }
  auto a = Address::parse(text.substr(0, slash));
  if (!a) return std::nullopt;
  const auto lenText = text.substr(slash + 1);
  if (lenText.empty() || lenText.size() > 3) return std::nullopt;
  int len = 0;
  for (char c : lenText) {
    if (c < '0' || c > '9') return std::nullopt;
    len = len * 10 + (c - '0');
  }
  if (lenText.size() > 1 && lenText[0] == '0') return std::nullopt;
  if (len > a->bits()) return std::nullopt;
  return Prefix(*a, len);
}

u128 Prefix::mask() const {
  const int bits = addr_.bits();
  if (len_ == 0) return 0;
  const u128 all = widthMask(addr_.family());
  return (all << (bits - len_)) & all;
}

Prefix Prefix::network() const {
  const u128 v = addr_.value() & mask();
  return Prefix(addr_.isV4() ? Address::v4(static_cast<std::uint32_t>(v)) : Address::v6(v), len_);
}

Address Prefix::last() const { return first().plus(sizeMinusOne()); }

u128 Prefix::sizeMinusOne() const { return ~mask() & widthMask(addr_.family()); }

bool Prefix::contains(const Address& a) const {
  return a.family() == family() && (a.value() & mask()) == (addr_.value() & mask());
}

bool Prefix::overlaps(const Prefix& other) const {
  if (other.family() != family()) return false;
  return contains(other.first()) || other.contains(first());
}

std::string Prefix::str() const { return addr_.str() + "/" + std::to_string(len_); }

}  // namespace dualstack::ip

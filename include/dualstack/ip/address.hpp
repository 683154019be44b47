// IPv4 and IPv6 addresses and prefixes with 128-bit arithmetic. Pure values: no syscalls.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dualstack::ip {

__extension__ using u128 = unsigned __int128;

enum class Family : std::uint8_t { V4 = 4, V6 = 6 };

// "4" or "6".
std::string_view familyName(Family f);

class Address {
 public:
  Address() = default;
  static Address v4(std::uint32_t value) { return Address(Family::V4, value); }
  static Address v6(u128 value) { return Address(Family::V6, value); }
  // Parses dotted-quad or RFC 4291 text. IPv4-mapped IPv6 text stays IPv6.
  static std::optional<Address> parse(std::string_view text);
  // Network byte order, 4 or 16 bytes.
  static Address fromBytes(Family f, const unsigned char* bytes);

  Family family() const { return family_; }
  bool isV4() const { return family_ == Family::V4; }
  int bits() const { return isV4() ? 32 : 128; }
  u128 value() const { return value_; }
  // Canonical text (RFC 5952 for IPv6).
  std::string str() const;
  // Network byte order into out (4 or 16 bytes).
  void toBytes(unsigned char* out) const;

  // Wrapping arithmetic within the family's width.
  Address plus(u128 n) const;
  Address minus(u128 n) const;

  friend bool operator==(const Address&, const Address&) = default;
  friend std::strong_ordering operator<=>(const Address& a, const Address& b) {
    if (a.family_ != b.family_) return a.family_ <=> b.family_;
    return a.value_ <=> b.value_;
  }

 private:
  Address(Family f, u128 v) : family_(f), value_(v) {}
  Family family_ = Family::V4;
  u128 value_ = 0;
};

// An address with a prefix length, e.g. 10.244.1.5/24. Host bits may be set (an interface
// address); network() clears them.
class Prefix {
 public:
  Prefix() = default;
  Prefix(Address addr, int len);
  // "a.b.c.d/n" or "x::/n". Without "/n" only if allowBare (then a host prefix /32 or /128).
  static std::optional<Prefix> parse(std::string_view text, bool allowBare = false);
  // The largest usable single host prefix of an address: /32 or /128.
  static Prefix host(const Address& a) { return Prefix(a, a.bits()); }

  const Address& address() const { return addr_; }
  int length() const { return len_; }
  Family family() const { return addr_.family(); }
  bool hostBitsSet() const { return network().address() != addr_; }
  Prefix network() const;
  // First and last address of the prefix (last is the broadcast address for IPv4).
  Address first() const { return network().address(); }
  Address last() const;
  // Number of addresses minus one (so a /0 of IPv6 fits).
  u128 sizeMinusOne() const;
  bool contains(const Address& a) const;
  bool overlaps(const Prefix& other) const;
  std::string str() const;

  friend bool operator==(const Prefix&, const Prefix&) = default;

 private:
  u128 mask() const;
  Address addr_;
  int len_ = 0;
};

}  // namespace dualstack::ip

// CNI results (ADD output and prevResult) as typed values, converted to and from every
// supported spec version.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/ip/address.hpp"

namespace dualstack::cni {

struct Interface {
  std::string name;
  std::string mac;
  std::optional<int> mtu;  // 1.1.0
  std::string sandbox;     // empty for host-side interfaces
  friend bool operator==(const Interface&, const Interface&) = default;
};

struct IpConfig {
  ip::Prefix address;  // e.g. 10.244.1.5/24 (host bits set)
  std::optional<ip::Address> gateway;
  std::optional<int> interface;  // index into Result::interfaces
  friend bool operator==(const IpConfig&, const IpConfig&) = default;
};

struct Route {
  ip::Prefix dst;
  std::optional<ip::Address> gw;
  // 1.1.0 only; dropped when converting to older versions.
  std::optional<int> mtu, advmss, priority, table, scope;
  friend bool operator==(const Route&, const Route&) = default;
};

// ADD's output, serialised while the ADD can still be undone: once the attachment is committed,
// printing it is a write that cannot fail.
struct SerialisedResult {
  std::string text;     // the result as one line of JSON, with its newline
  std::string summary;  // its addresses, space-separated, for the log
};

struct Result {
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  nlohmann::json dns = nlohmann::json::object();

  // Parses a result of any supported version; Error(DecodeFailure) naming the bad field.
  static Result fromJson(const nlohmann::json& j, std::string_view where = "result");
  // Serialises for `version` (per-IP "version" below 1.0.0, 1.1.0 fields only in 1.1.0).
  nlohmann::json toJson(std::string_view version) const;
  // toJson as printed. Error(Internal) if a string is not valid UTF-8: every input that reaches a
  // result is validated first, so that would be a bug, caught before the commit point.
  SerialisedResult serialise(std::string_view version) const;
};

}  // namespace dualstack::cni

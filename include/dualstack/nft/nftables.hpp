// The one way into nftables: a libnftables context (the library is loaded with dlopen on first
// use), its errors turned into sys::Error, and readers for the JSON it lists sets in.
//
// A Context works in the network namespace of the thread that created it: libnftables opens its
// netlink socket in the constructor and keeps it for the Context's lifetime.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/ip/address.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::nft {

class Context {
 public:
  // Throws sys::Error: IoFailure when libnftables cannot be loaded or the netfilter netlink
  // socket cannot be opened, Internal when the context cannot be set up.
  Context();
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs nft commands (one transaction); false when nft refused them, error() says why. With
  // jsonOutput, `list` commands print JSON into output().
  bool run(const std::string& commands, bool jsonOutput = false);
  const std::string& output() const { return out_; }
  const std::string& error() const { return err_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string out_;
  std::string err_;
};

// Whether nft's error text reports errno `err` (libnftables prints strerror()).
bool reports(const std::string& nftText, int err);

// "<what>: nftables: <first line of nft's error> (<hint>)", the whole text as details.
// Code IoFailure.
sys::Error error(const std::string& what, const std::string& nftText);

// Runs a `list` command with JSON output and returns the "nftables" array of its output;
// nullopt when the object does not exist (ENOENT). Throws error() for other failures, and
// Internal for output that is not nftables' JSON.
std::optional<nlohmann::json> listJson(Context& nft, const std::string& command);

// The elements of a set object of that JSON ("set": {...}): names (sorted) of a set of strings
// such as ifnames; prefixes (sorted) of an interval set of addresses. An element that is not a
// prefix (a range) comes back as an impossible 0.0.0.1/0, so it never equals a wanted list.
std::vector<std::string> setNames(const nlohmann::json& set);
std::vector<ip::Prefix> setPrefixes(const nlohmann::json& set);
// The set object in a listJson() result of `list set`; nullptr if there is none.
const nlohmann::json* findSet(const nlohmann::json& items);

// Prefixes as an interval set holds them: networks (host bits cleared), sorted, and without any
// prefix that lies inside another one (interval sets refuse overlapping elements).
std::vector<ip::Prefix> normalized(std::vector<ip::Prefix> prefixes);
// "a/n, b/m" for an `elements = { ... }` clause.
std::string elementList(const std::vector<ip::Prefix>& prefixes);

}  // namespace dualstack::nft

#include "dualstack/k8s/cache.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/io.hpp"
#include "dualstack/sys/json.hpp"
#include "files.hpp"

namespace dualstack::k8s {

using nlohmann::json;
using sys::Code;
using sys::Error;

namespace {

constexpr int kVersion = 1;
constexpr std::size_t kMaxCache = 1U << 20;
constexpr std::int64_t kMaxClockMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::duration::max())
                                         .count();

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return buf;
}

}  // namespace

std::string cachePath(const std::string& dataDir, const std::string& nodeName) {
  return dataDir + "/.dualstack-k8s/" + nodeName + ".json";
}

std::string formatCache(const CachedNode& c) {
  json podCIDRs = json::array();
  for (const auto& p : c.node.podCIDRs) podCIDRs.push_back(p.prefix.str());
  json addresses = json::array();
  for (const auto& a : c.node.addresses) {
    addresses.push_back({{"type", a.type}, {"address", a.address.str()}});
  }
  const json j = {
      {"version", kVersion},
      {"node", c.node.name},
      {"kubeconfig", c.kubeconfig},
      {"server", c.server},
      {"fetchedAt", rfc3339(c.fetchedAt)},
      {"fetchedAtMs",
       std::chrono::duration_cast<std::chrono::milliseconds>(c.fetchedAt.time_since_epoch())
           .count()},
      {"podCIDRs", podCIDRs},
      {"addresses", addresses},
  };
  return j.dump(2) + "\n";
}

CachedNode parseCache(std::string_view text, const std::string& path) {
  const std::string what = "node cache " + path;
  const Code code = Code::DecodeFailure;
  json j = sys::parseJson(text, what);
  if (!j.is_object()) throw Error(code, what + ": expected an object");
  const auto version = sys::optInt(j, "version", what, 0, 1000, code);
  if (version != kVersion) {
    throw Error(code, what + ": version " + (version ? std::to_string(*version) : "missing") +
                          " is not " + std::to_string(kVersion));
  }
  CachedNode c;
  c.node.name = sys::reqString(j, "node", what, code);
  c.kubeconfig = sys::reqString(j, "kubeconfig", what, code);
  c.server = sys::optString(j, "server", what, code).value_or("");
  // The clock counts nanoseconds in 64 bits, up to the year 2262: a later time would overflow
  // into an arbitrary one, and could make a corrupt cache look fresh.
  const auto ms = sys::optInt(j, "fetchedAtMs", what, 0, kMaxClockMs, code);
  if (!ms) throw Error(code, what + ": fetchedAtMs is missing");
  c.fetchedAt = std::chrono::system_clock::time_point(std::chrono::milliseconds(*ms));
  // Moved, not copied, into the shape parseNode reads.
  json shaped = {{"spec", json::object()}, {"status", json::object()}};
  if (auto it = j.find("podCIDRs"); it != j.end()) shaped["spec"]["podCIDRs"] = std::move(*it);
  if (auto it = j.find("addresses"); it != j.end()) {
    shaped["status"]["addresses"] = std::move(*it);
  }
  Node parsed = parseNode(shaped, what);
  if (parsed.podCIDRs.empty() && parsed.unusable.empty()) {
    throw Error(code, what + ": podCIDRs is empty");
  }
  c.node.podCIDRs = std::move(parsed.podCIDRs);
  c.node.addresses = std::move(parsed.addresses);
  c.node.unusable = std::move(parsed.unusable);
  return c;
}

std::optional<CachedNode> readCache(const std::string& path) {
  // Our own file under dataDir: a link planted there is refused, not followed.
  const auto text = detail::readFileIfExists(path, "node cache", kMaxCache, sys::Links::Refuse);
  if (!text) return std::nullopt;
  return parseCache(*text, path);
}

void writeCache(const std::string& path, const CachedNode& c) {
  detail::writeFileAtomic(path, formatCache(c));
  detail::removeStaleTemps(path, sys::kStaleTempAge);
}

}  // namespace dualstack::k8s

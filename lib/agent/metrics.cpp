#include "dualstack/agent/metrics.hpp"

#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace dualstack::agent {

using nlohmann::json;

void Histogram::observe(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) buckets_[i].fetch_add(1, std::memory_order_relaxed);
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sumMicros_.fetch_add(static_cast<std::uint64_t>(std::llround(seconds * 1e6)),
                       std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    s.cumulative[i] = buckets_[i].load(std::memory_order_relaxed);
  }
  s.count = count_.load(std::memory_order_relaxed);
  s.sum = static_cast<double>(sumMicros_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

namespace {

// The shortest text that reads back as the same double ("0.005", not "0.0050000000000000001").
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string labelValue(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class Exposition {
 public:
  void family(const std::string& name, const char* type, const char* help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, double value, const std::string& labels = {}) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + number(value) + "\n";
  }
  void one(const std::string& name, const char* type, const char* help, double value) {
    family(name, type, help);
    sample(name, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

constexpr const char* kFam4 = "family=\"ipv4\"";
constexpr const char* kFam6 = "family=\"ipv6\"";

double seconds(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }

std::string isoTime(std::int64_t unixSeconds) {
  const auto t = static_cast<std::time_t>(unixSeconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "3s", "4m10s", "2h5m", "3d4h".
std::string span(std::int64_t secondsLeft) {
  const bool neg = secondsLeft < 0;
  std::int64_t s = neg ? -secondsLeft : secondsLeft;
  std::string out;
  if (s >= 86400) {
    out = std::to_string(s / 86400) + "d" + std::to_string(s % 86400 / 3600) + "h";
  } else if (s >= 3600) {
    out = std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  } else if (s >= 60) {
    out = std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  } else {
    out = std::to_string(s) + "s";
  }
  return neg ? "-" + out : out;
}

void infoMetrics(Exposition& e, const std::string& p, const AgentSnapshot& s) {
  e.family(p + "info", "gauge", "The agent's version, node and route protocol number.");
  e.sample(p + "info", 1,
           "version=\"" + labelValue(s.version) + "\",node=\"" + labelValue(s.node) +
               "\",route_protocol=\"" + std::to_string(s.routeProtocol) + "\"");
  e.one(p + "synced", "gauge", "1 once a complete list of Nodes has arrived from the API server.",
        s.synced ? 1 : 0);
  e.one(p + "nodes", "gauge", "Nodes known from the API server.", static_cast<double>(s.nodes));
}

void routeMetrics(Exposition& e, const std::string& p, const RouteReport& r) {
  e.family(p + "routes_wanted", "gauge", "Routes to other nodes' podCIDRs the Nodes ask for.");
  e.sample(p + "routes_wanted", static_cast<double>(r.wanted4), kFam4);
  e.sample(p + "routes_wanted", static_cast<double>(r.wanted6), kFam6);
  e.family(p + "routes_installed", "gauge", "Wanted routes that are in the kernel as wanted.");
  e.sample(p + "routes_installed", static_cast<double>(r.installed4), kFam4);
  e.sample(p + "routes_installed", static_cast<double>(r.installed6), kFam6);
  e.one(p + "unreachable_next_hops", "gauge",
        "podCIDRs not routed because their node's address is not directly reachable.",
        static_cast<double>(r.unreachable.size()));
  e.one(p + "route_conflicts", "gauge",
        "podCIDRs left alone because a route of another protocol covers them.",
        static_cast<double>(r.conflicts.size()));
  e.one(p + "podcidrs_not_routed", "gauge",
        "podCIDRs without a route: node without an address of the family, or claimed twice.",
        static_cast<double>(r.notRouted.size()));
  e.family(p + "cluster_set_prefixes", "gauge",
           "podCIDRs in the masquerade table's cluster sets (never masqueraded).");
  e.sample(p + "cluster_set_prefixes", static_cast<double>(r.cluster4), kFam4);
  e.sample(p + "cluster_set_prefixes", static_cast<double>(r.cluster6), kFam6);
}

void reconcileMetrics(Exposition& e, const std::string& p, const AgentSnapshot& s) {
  e.family(p + "reconciles_total", "counter",
           "Reconciles: full (periodic, every route) and partial (after Node events).");
  e.sample(p + "reconciles_total", static_cast<double>(s.reconcilesFull), "kind=\"full\"");
  e.sample(p + "reconciles_total", static_cast<double>(s.reconcilesPartial), "kind=\"partial\"");
  e.one(p + "reconcile_errors_total", "counter",
        "Reconciles in which a route or set change or a read of the kernel failed.",
        static_cast<double>(s.reconcileErrors));
  const std::string h = p + "reconcile_duration_seconds";
  e.family(h, "histogram", "How long reconciles took.");
  for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    e.sample(h + "_bucket", static_cast<double>(s.reconcileDuration.cumulative[i]),
             "le=\"" + number(Histogram::kBounds[i]) + "\"");
  }
  e.sample(h + "_bucket", static_cast<double>(s.reconcileDuration.count), "le=\"+Inf\"");
  e.sample(h + "_sum", s.reconcileDuration.sum);
  e.sample(h + "_count", static_cast<double>(s.reconcileDuration.count));
  e.one(p + "last_reconcile_timestamp_seconds", "gauge", "When the last reconcile ended.",
        seconds(s.lastReconcileUnixMs));
}

struct WatchCounter {
  const char* name;
  const char* help;
  std::uint64_t WatchCounters::*value;
};
constexpr WatchCounter kWatchCounters[] = {
    {"watch_lists_total", "Complete lists of Nodes read.", &WatchCounters::lists},
    {"watch_requests_total", "Watch requests made.", &WatchCounters::watches},
    {"watch_restarts_total", "Watches that ended and were made again.",
     &WatchCounters::watchRestarts},
    {"watch_relists_total", "Lists made again because the watch's resourceVersion was gone (410).",
     &WatchCounters::relists410},
    {"watch_events_total", "Node events received.", &WatchCounters::events},
    {"watch_errors_total", "Failed requests to the API server, bad answers.",
     &WatchCounters::errors},
};

void watchMetrics(Exposition& e, const std::string& p, const AgentSnapshot& s) {
  for (const auto& c : kWatchCounters) {
    e.one(p + c.name, "counter", c.help, static_cast<double>(s.watch.*c.value));
  }
  e.one(p + "last_sync_timestamp_seconds", "gauge",
        "When the API server last sent a list, an event or a bookmark (0: never).",
        seconds(s.watch.lastSyncUnixMs));
  e.one(p + "seconds_since_last_sync", "gauge",
        "Seconds since the API server last sent a list, an event or a bookmark (-1: never).",
        s.watch.lastSyncUnixMs > 0 ? seconds(s.nowUnixMs - s.watch.lastSyncUnixMs) : -1);
}

void tokenMetrics(Exposition& e, const std::string& p, const TokenState& t) {
  if (!t.enabled) return;
  e.one(p + "token_expiry_timestamp_seconds", "gauge",
        "When the token in the plugin's kubeconfig expires (0: none written yet).",
        static_cast<double>(t.expiresUnix));
  e.one(p + "token_renewals_total", "counter", "Tokens requested and written.",
        static_cast<double>(t.renewals));
  e.one(p + "token_renewal_errors_total", "counter", "Failed token requests or writes.",
        static_cast<double>(t.failures));
}

}  // namespace

std::string renderMetrics(const AgentSnapshot& s) {
  Exposition e;
  const std::string p = "dualstack_agent_";
  infoMetrics(e, p, s);
  routeMetrics(e, p, s.routes);
  reconcileMetrics(e, p, s);
  watchMetrics(e, p, s);
  tokenMetrics(e, p, s.token);
  return e.take();
}

json renderStatus(const AgentSnapshot& s, std::size_t maxListed) {
  const auto problems = [&](const std::vector<RouteReport::Problem>& list) {
    json items = json::array();
    for (std::size_t i = 0; i < list.size() && i < maxListed; ++i) {
      const auto& p = list[i];
      json item = {{"dst", p.dst}, {"node", p.node}, {"reason", p.reason}};
      if (!p.via.empty()) item["via"] = p.via;
      items.push_back(std::move(item));
    }
    return json{{"count", list.size()}, {"items", std::move(items)}};
  };
  json j = {
      {"node", s.node},
      {"version", s.version},
      {"routeProtocol", s.routeProtocol},
      {"routing", s.routing},
      {"synced", s.synced},
      {"nodes", s.nodes},
      {"routes",
       {{"ipv4", {{"wanted", s.routes.wanted4}, {"installed", s.routes.installed4}}},
        {"ipv6", {{"wanted", s.routes.wanted6}, {"installed", s.routes.installed6}}}}},
      {"unreachable", problems(s.routes.unreachable)},
      {"conflicts", problems(s.routes.conflicts)},
      {"notRouted", problems(s.routes.notRouted)},
      {"clusterSets", {{"ipv4", s.routes.cluster4}, {"ipv6", s.routes.cluster6}}},
      {"reconciles",
       {{"full", s.reconcilesFull},
        {"partial", s.reconcilesPartial},
        {"errors", s.reconcileErrors},
        {"lastUnixMs", s.lastReconcileUnixMs},
        {"lastSeconds", s.lastReconcileSeconds}}},
      {"watch",
       {{"lists", s.watch.lists},
        {"watches", s.watch.watches},
        {"restarts", s.watch.watchRestarts},
        {"relists", s.watch.relists410},
        {"events", s.watch.events},
        {"errors", s.watch.errors},
        {"lastSyncUnixMs", s.watch.lastSyncUnixMs}}},
      {"nowUnixMs", s.nowUnixMs},
  };
  if (s.token.enabled) {
    j["token"] = {{"file", s.token.file},
                  {"expiresUnix", s.token.expiresUnix},
                  {"renewals", s.token.renewals},
                  {"failures", s.token.failures},
                  {"lastError", s.token.lastError}};
  }
  return j;
}

namespace {

std::int64_t i64(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<std::int64_t>() : 0;
}
std::string str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}
const json& sub(const json& j, const char* key) {
  static const json empty = json::object();
  return j.is_object() && j.contains(key) && j[key].is_object() ? j[key] : empty;
}

void listProblems(std::string& out, const json& j, const char* key, const char* title) {
  const json& block = sub(j, key);
  const std::int64_t count = i64(block, "count");
  out += std::string(title) + ": " + std::to_string(count) + "\n";
  if (!block.contains("items") || !block["items"].is_array()) return;
  std::int64_t shown = 0;
  for (const auto& item : block["items"]) {
    if (shown == 50) break;
    ++shown;
    out += "  " + str(item, "dst");
    if (!str(item, "via").empty()) out += " via " + str(item, "via");
    out += " (node " + str(item, "node") + "): " + str(item, "reason") + "\n";
  }
  if (count > shown) out += "  ... and " + std::to_string(count - shown) + " more\n";
}

void routesText(std::string& out, const json& j) {
  if (!j.value("routing", true)) {
    out += "Routes: off (--no-routes)\n";
    return;
  }
  const json& r = sub(j, "routes");
  for (const char* fam : {"ipv4", "ipv6"}) {
    const json& f = sub(r, fam);
    const std::int64_t wanted = i64(f, "wanted"), installed = i64(f, "installed");
    out += std::string("Routes ") + (fam[3] == '4' ? "IPv4" : "IPv6") + ": " +
           std::to_string(wanted) + " wanted, " + std::to_string(installed) + " installed" +
           (installed < wanted ? " (see below)" : "") + "\n";
  }
  listProblems(out, j, "unreachable", "Next hops not directly reachable (no route installed)");
  listProblems(out, j, "conflicts", "podCIDRs covered by another route (left alone)");
}

void reconcilesText(std::string& out, const json& rec, const std::string& last) {
  char took[32];
  std::snprintf(took, sizeof took, "%.1f ms",
                rec.contains("lastSeconds") && rec["lastSeconds"].is_number()
                    ? rec["lastSeconds"].get<double>() * 1000
                    : 0.0);
  out += "Reconciles: " + std::to_string(i64(rec, "full")) + " full, " +
         std::to_string(i64(rec, "partial")) + " after events, " +
         std::to_string(i64(rec, "errors")) + " with errors; last " + last + ", took " + took +
         "\n";
}

void tokenText(std::string& out, const json& t, std::int64_t nowMs) {
  const std::int64_t exp = i64(t, "expiresUnix");
  out += "Plugin kubeconfig " + str(t, "file") + ": ";
  if (exp > 0) {
    out += "token expires " + isoTime(exp) + " (in " + span(exp - nowMs / 1000) + ")";
  } else {
    out += "no token written yet";
  }
  out += ", " + std::to_string(i64(t, "renewals")) + " renewals, " +
         std::to_string(i64(t, "failures")) + " failures\n";
  if (!str(t, "lastError").empty()) out += "  last error: " + str(t, "lastError") + "\n";
}

}  // namespace

std::string formatStatus(const json& j) {
  const std::int64_t now = i64(j, "nowUnixMs");
  const auto ago = [&](std::int64_t ms) {
    return ms > 0 ? span((now - ms) / 1000) + " ago" : std::string("never");
  };
  std::string out = "dualstack-agent " + str(j, "version") + " on node " + str(j, "node") +
                    ", route protocol " + std::to_string(i64(j, "routeProtocol")) + "\n";
  const json& watch = sub(j, "watch");
  const bool synced = j.value("synced", false);
  out += "Nodes: " + std::to_string(i64(j, "nodes")) + " seen; " +
         (synced ? "synced with the API server" : "WAITING for the first complete list") +
         ", last heard from it " + ago(i64(watch, "lastSyncUnixMs")) + "\n";
  routesText(out, j);
  listProblems(out, j, "notRouted", "podCIDRs without a route");
  const json& sets = sub(j, "clusterSets");
  out += "Cluster sets (never masqueraded): " + std::to_string(i64(sets, "ipv4")) + " IPv4, " +
         std::to_string(i64(sets, "ipv6")) + " IPv6 podCIDRs\n";
  const json& rec = sub(j, "reconciles");
  reconcilesText(out, rec, ago(i64(rec, "lastUnixMs")));
  out += "Watch: " + std::to_string(i64(watch, "lists")) + " lists, " +
         std::to_string(i64(watch, "restarts")) + " restarts, " +
         std::to_string(i64(watch, "relists")) + " relists after 410, " +
         std::to_string(i64(watch, "events")) + " events, " + std::to_string(i64(watch, "errors")) +
         " errors\n";
  if (j.contains("token")) tokenText(out, sub(j, "token"), now);
  return out;
}

}  // namespace dualstack::agent

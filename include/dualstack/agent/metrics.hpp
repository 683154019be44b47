// What the agent shows of itself: Prometheus text for /metrics, JSON for /status, and the
// readable summary `dualstack-agent status` prints from that JSON. Pure functions of a snapshot.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "dualstack/agent/reconciler.hpp"

namespace dualstack::agent {

// A Prometheus histogram with fixed buckets, updated lock-free.
class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,   1,    2.5,   5,    10};
  void observe(double seconds);

  struct Snapshot {
    std::array<std::uint64_t, kBounds.size()> cumulative{};  // observations <= each bound
    std::uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size()> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sumMicros_{0};
};

struct WatchCounters {
  std::uint64_t lists = 0, watches = 0, watchRestarts = 0, relists410 = 0, events = 0, errors = 0;
  std::int64_t lastSyncUnixMs = 0;  // 0: never
};

struct TokenState {
  bool enabled = false;
  std::string file;              // the plugin kubeconfig
  std::int64_t expiresUnix = 0;  // of the token in it; 0: none written yet
  std::uint64_t renewals = 0, failures = 0;
  std::string lastError;  // of the last failed attempt, until one succeeds
};

struct AgentSnapshot {
  std::string node, version;
  int routeProtocol = 0;
  bool routing = true;
  bool synced = false;  // a complete Node list has arrived
  std::size_t nodes = 0;
  RouteReport routes;
  std::uint64_t reconcilesFull = 0, reconcilesPartial = 0, reconcileErrors = 0;
  std::int64_t lastReconcileUnixMs = 0;
  double lastReconcileSeconds = 0;
  Histogram::Snapshot reconcileDuration;
  WatchCounters watch;
  TokenState token;
  std::int64_t nowUnixMs = 0;
};

// Prometheus text exposition format 0.0.4.
std::string renderMetrics(const AgentSnapshot& s);
// The /status document. Problem lists hold at most `maxListed` entries each (the counts are
// complete).
nlohmann::json renderStatus(const AgentSnapshot& s, std::size_t maxListed = 1000);
// What `dualstack-agent status` prints for a /status document.
std::string formatStatus(const nlohmann::json& status);

}  // namespace dualstack::agent

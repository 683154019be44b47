// The agent's loop. Nodes arrive from a NodeSource (the API's list and watch) on one thread and
// only update the Node table and mark what they touched; the reconcile runs on another:
//
//   - a full pass right after every complete list, then every `interval` (it restores a route
//     someone deleted, a set a firewall reload flushed), and sooner after a failed pass (with
//     backoff);
//   - a partial pass for the podCIDRs Node events touched: at once after a quiet spell, and
//     during a burst at most one per `coalesce`, each taking every event that arrived meanwhile:
//     a burst makes a few passes, not one per event, and events that change nothing routing
//     needs (kubelet's status heartbeats) make none.
//
// Nothing is reconciled before the first complete list: a restart while the API server is
// unreachable leaves every route and set as it is.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "dualstack/agent/kernel.hpp"
#include "dualstack/agent/log.hpp"
#include "dualstack/agent/metrics.hpp"
#include "dualstack/agent/nodes.hpp"
#include "dualstack/agent/reconciler.hpp"
#include "dualstack/k8s/api.hpp"
#include "dualstack/k8s/informer.hpp"
#include "dualstack/k8s/kubeconfig.hpp"

namespace dualstack::agent {

// Where Nodes come from: the informer (list, then watch) in the agent, a fake in tests.
class NodeSource {
 public:
  struct Callbacks {
    std::function<void(std::vector<k8s::Node>)> onList;  // a complete list
    std::function<void(const k8s::Node&)> onChange;      // added or modified
    std::function<void(const std::string&)> onDelete;    // deleted, by name
  };
  virtual ~NodeSource() = default;
  // Runs until `stop`; calls the callbacks on its own thread. Throws only when it cannot start
  // at all (an unusable kubeconfig).
  virtual void run(std::stop_token stop, const Callbacks& callbacks) = 0;
  virtual WatchCounters counters() const = 0;
};

// The Nodes of the cluster from the API server: a k8s::NodeInformer (paginated list, then watch
// with bookmarks, relist on 410, reconnect with backoff).
std::unique_ptr<NodeSource> informerSource(std::function<k8s::Kubeconfig()> config,
                                           k8s::InformerOptions options);

struct AgentConfig {
  std::string self;  // this node's name
  std::uint8_t protocol = 0;
  std::chrono::milliseconds interval{std::chrono::seconds(30)};
  std::chrono::milliseconds coalesce{10};
  std::chrono::milliseconds retryInitial{500};  // after a failed pass, doubling up to interval
  std::string version;
};

class Agent {
 public:
  // `routes` and `sets` may be null (routing off; no nftables).
  Agent(AgentConfig config, NodeSource& source, RouteTable* routes, ClusterSets* sets, Log& log);

  // Runs the source on a thread of its own and reconciles on the calling thread until `stop`;
  // returns once both have ended. Rethrows what the source threw at its start.
  void run(std::stop_token stop);
  // A full pass as soon as possible (SIGHUP).
  void requestFull();
  // Every route with the agent's protocol removed (after run() returned). Returns how many.
  std::size_t removeOwnRoutes();

  AgentSnapshot snapshot() const;
  // When the reconcile loop last woke up (for /healthz): a loop that stopped turning is broken.
  std::chrono::steady_clock::time_point lastLoop() const;
  std::uint64_t passes() const { return full_.load() + partial_.load(); }
  std::uint64_t fullPasses() const { return full_.load(); }

 private:
  void onList(std::vector<k8s::Node> nodes);
  void onChange(const k8s::Node& node);
  void onDelete(const std::string& name);
  // Applies one Node event to the table under the lock; the podCIDRs it touched (returned by
  // `change`) are reconciled next.
  void changeTable(const std::function<std::vector<ip::Prefix>()>& change);
  struct Pass;
  void loop(std::stop_token stop);
  // Waits for work or the next full pass and takes it from the table; nullopt once stopped.
  std::optional<Pass> nextPass(std::stop_token stop,
                               std::chrono::steady_clock::time_point& nextFull);
  Pass takePass(bool full);  // mu_ held
  PassResult reconcile(const Pass& pass);
  // Records what the pass wrote and schedules the next full pass (sooner after a failure).
  void afterPass(const Pass& pass, const PassResult& result,
                 std::chrono::steady_clock::time_point& nextFull, std::chrono::milliseconds& retry);

  AgentConfig config_;
  NodeSource& source_;
  Log& log_;
  Reconciler reconciler_;
  bool routing_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  NodeTable table_;
  bool synced_ = false;
  bool fullPending_ = false;
  std::set<ip::Prefix, PrefixLess> dirty_;
  std::chrono::steady_clock::time_point lastPassEnd_;
  std::uint64_t setsGeneration_ = 0;
  bool setsWritten_ = false;

  std::atomic<std::uint64_t> full_{0}, partial_{0}, errors_{0};
  std::atomic<std::int64_t> lastPassUnixMs_{0};
  std::atomic<std::int64_t> lastPassMicros_{0};
  std::atomic<std::int64_t> lastLoopNs_{0};
  Histogram duration_;
};

}  // namespace dualstack::agent

#include "dualstack/agent/agent.hpp"

#include <algorithm>
#include <thread>

namespace dualstack::agent {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::int64_t unixMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ClusterPrefixes clusterPrefixes(const NodeTable& t) {
  return {t.podCIDRs(ip::Family::V4), t.podCIDRs(ip::Family::V6)};
}

}  // namespace

Agent::Agent(AgentConfig config, NodeSource& source, RouteTable* routes, ClusterSets* sets,
             Log& log)
    : config_(std::move(config)),
      source_(source),
      log_(log),
      reconciler_({config_.self, config_.protocol}, routes, sets, log),
      routing_(routes != nullptr) {
  lastLoopNs_ = Clock::now().time_since_epoch().count();
}

void Agent::onList(std::vector<k8s::Node> nodes) {
  const std::size_t n = nodes.size();
  const bool selfListed = std::any_of(
      nodes.begin(), nodes.end(), [&](const k8s::Node& node) { return node.name == config_.self; });
  {
    const std::lock_guard lock(mu_);
    table_.replaceAll(nodes);
    synced_ = true;
    fullPending_ = true;
    dirty_.clear();
  }
  cv_.notify_all();
  log_.info("list of Nodes received", {{"nodes", std::to_string(n)}});
  if (!selfListed) {
    log_.warn("this node is not in the list of Nodes (is --node-name right?)",
              {{"node", config_.self}});
  }
}

void Agent::onChange(const k8s::Node& node) {
  changeTable([&] { return table_.upsert(node); });
}

void Agent::onDelete(const std::string& name) {
  changeTable([&] { return table_.erase(name); });
}

void Agent::changeTable(const std::function<std::vector<ip::Prefix>()>& change) {
  bool wake = false;
  {
    const std::lock_guard lock(mu_);
    const auto touched = change();
    if (!touched.empty()) {
      dirty_.insert(touched.begin(), touched.end());
      wake = true;
    }
  }
  if (wake) cv_.notify_all();
}

void Agent::requestFull() {
  {
    const std::lock_guard lock(mu_);
    fullPending_ = true;
  }
  cv_.notify_all();
}

void Agent::run(std::stop_token stop) {
  std::exception_ptr sourceError;
  std::stop_source sourceStop;
  // The loop's stop also stops the source; a source that fails at its start stops the loop.
  std::stop_callback forward(stop, [&] { sourceStop.request_stop(); });
  std::stop_source loopStop;
  std::stop_callback forwardLoop(stop, [&] { loopStop.request_stop(); });
  std::thread sourceThread([&] {
    NodeSource::Callbacks cb;
    cb.onList = [this](std::vector<k8s::Node> nodes) { onList(std::move(nodes)); };
    cb.onChange = [this](const k8s::Node& node) { onChange(node); };
    cb.onDelete = [this](const std::string& name) { onDelete(name); };
    try {
      source_.run(sourceStop.get_token(), cb);
    } catch (...) {
      sourceError = std::current_exception();
      loopStop.request_stop();
    }
  });
  loop(loopStop.get_token());
  sourceStop.request_stop();
  sourceThread.join();
  if (sourceError) std::rethrow_exception(sourceError);
}

// What one pass reconciles, taken from the table under the lock.
struct Agent::Pass {
  bool full = false;
  bool synced = false;
  std::uint64_t generation = 0;  // of the podCIDRs the cluster sets were built from
  Desired desired;
  ClusterPrefixes cluster;                        // full pass
  std::vector<ip::Prefix> dsts;                   // partial pass: the podCIDRs touched
  std::optional<ClusterPrefixes> partialCluster;  // partial pass, when the sets are stale
};

void Agent::loop(std::stop_token stop) {
  Clock::time_point nextFull = Clock::now() + config_.interval;
  milliseconds retry = config_.retryInitial;
  while (!stop.stop_requested()) {
    const std::optional<Pass> pass = nextPass(stop, nextFull);
    if (!pass) break;
    const PassResult result = reconcile(*pass);
    afterPass(*pass, result, nextFull, retry);
  }
}

std::optional<Agent::Pass> Agent::nextPass(std::stop_token stop, Clock::time_point& nextFull) {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_until(lock, stop, nextFull,
                   [&] { return fullPending_ || (synced_ && !dirty_.empty()); });
    lastLoopNs_ = Clock::now().time_since_epoch().count();
    if (stop.stop_requested()) return std::nullopt;
    if (synced_) break;
    // Nothing is known yet: nothing is touched. The next full pass follows the first list.
    fullPending_ = false;
    nextFull = Clock::now() + config_.interval;
  }
  bool full = fullPending_ || Clock::now() >= nextFull;
  if (!full && config_.coalesce.count() > 0) {
    // The first event after a quiet spell is handled at once; while events keep coming,
    // passes are at least `coalesce` apart and each takes everything that arrived meanwhile.
    const auto until = lastPassEnd_ + config_.coalesce;
    if (Clock::now() < until) {
      cv_.wait_until(lock, stop, until, [&] { return fullPending_; });
      if (stop.stop_requested()) return std::nullopt;
      full = fullPending_;
    }
  }
  return takePass(full);
}

Agent::Pass Agent::takePass(bool full) {
  Pass p;
  p.full = full;
  p.synced = synced_;
  p.generation = table_.podCIDRGeneration();
  if (full) {
    p.desired = desiredRoutes(table_, config_.self);
    p.cluster = clusterPrefixes(table_);
    fullPending_ = false;
  } else {
    p.dsts.assign(dirty_.begin(), dirty_.end());
    p.desired = desiredRoutes(table_, config_.self, p.dsts);
    if (!setsWritten_ || p.generation != setsGeneration_)
      p.partialCluster = clusterPrefixes(table_);
  }
  dirty_.clear();
  return p;
}

PassResult Agent::reconcile(const Pass& p) {
  const auto start = Clock::now();
  const PassResult result =
      p.full ? reconciler_.full(p.desired, p.cluster, p.synced)
             : reconciler_.partial(p.desired, p.dsts, p.partialCluster, p.synced);
  lastPassEnd_ = Clock::now();
  const auto took = lastPassEnd_ - start;
  duration_.observe(std::chrono::duration<double>(took).count());
  lastPassMicros_ = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
  lastPassUnixMs_ = unixMs();
  (p.full ? full_ : partial_)++;
  return result;
}

void Agent::afterPass(const Pass& p, const PassResult& result, Clock::time_point& nextFull,
                      milliseconds& retry) {
  const bool setsSynced = p.full || p.partialCluster.has_value();
  {
    const std::lock_guard lock(mu_);
    if (setsSynced && result.failed == 0) {
      setsGeneration_ = p.generation;
      setsWritten_ = true;
    }
    if (result.needFull) fullPending_ = true;
  }
  if (result.failed > 0) {
    ++errors_;
    // Sooner than the interval, backing off while it keeps failing.
    const milliseconds wait = std::min<milliseconds>(retry, config_.interval);
    nextFull = Clock::now() + wait;
    retry = std::min<milliseconds>(retry * 2, config_.interval);
    log_.warn("reconcile failed; a full one follows", {{"in_ms", std::to_string(wait.count())}});
  } else if (p.full) {
    nextFull = Clock::now() + config_.interval;
    retry = config_.retryInitial;
  }
}

std::size_t Agent::removeOwnRoutes() { return reconciler_.removeOwnRoutes(); }

Clock::time_point Agent::lastLoop() const {
  return Clock::time_point(Clock::duration(lastLoopNs_.load()));
}

AgentSnapshot Agent::snapshot() const {
  AgentSnapshot s;
  s.node = config_.self;
  s.version = config_.version;
  s.routeProtocol = config_.protocol;
  s.routing = routing_;
  {
    const std::lock_guard lock(mu_);
    s.synced = synced_;
    s.nodes = table_.size();
  }
  s.routes = reconciler_.report();
  s.reconcilesFull = full_.load();
  s.reconcilesPartial = partial_.load();
  s.reconcileErrors = errors_.load();
  s.lastReconcileUnixMs = lastPassUnixMs_.load();
  s.lastReconcileSeconds = static_cast<double>(lastPassMicros_.load()) / 1e6;
  s.reconcileDuration = duration_.snapshot();
  s.watch = source_.counters();
  s.nowUnixMs = unixMs();
  return s;
}

}  // namespace dualstack::agent

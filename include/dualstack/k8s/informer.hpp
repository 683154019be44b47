// Every Node of the cluster, kept current the way client-go's informers do it:
//
//   1. list:  GET /api/v1/nodes?limit=500, then ?limit=500&continue=<token> until the last page;
//             every page is read at the first page's resourceVersion (a consistent snapshot)
//   2. watch: GET /api/v1/nodes?watch=1&resourceVersion=<the list's>&allowWatchBookmarks=true
//             &timeoutSeconds=<300..600>: one event per line; bookmarks move the resourceVersion
//             on without a change, so a quiet cluster never needs a relist
//   3. when the stream ends (the server's timeout): watch again from the last resourceVersion;
//      on 410 Gone (an ERROR event holding a Status with code 410, or an HTTP 410): list again;
//      on any other failure: wait (exponential backoff with jitter) and watch again.
//
// Pages are decoded as they arrive, one Node at a time, and watch lines one by one, with a SAX
// parse that keeps only the Node model's fields and resourceVersions (watch.hpp): a 5,000-Node
// list never exists as one JSON tree, nor as one text.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/k8s/api.hpp"
#include "dualstack/k8s/http.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/logfmt.hpp"

namespace dualstack::k8s {

struct InformerOptions {
  std::size_t pageSize = 500;                       // list ?limit=
  std::chrono::seconds watchTimeout{300};           // ?timeoutSeconds= (jittered like client-go)
  std::chrono::milliseconds requestTimeout{10000};  // connect + response headers
  std::chrono::seconds idleTimeout{90};  // no byte (event or bookmark) for this long: reconnect
  std::chrono::milliseconds backoffInitial{500}, backoffMax{30000};  // with jitter
  std::size_t maxEventBytes = 4U << 20;  // one watch line, one Node of a list page
  std::size_t maxPageBytes = 64U << 20;  // one list page (counted as it arrives, never held)
  // Where the informer's records go: errors (a failed request, a decode error), info (relists,
  // reconnects), debug (every request). Unset: logfmt lines on stderr, errors and info.
  std::function<void(sys::LogLevel, const std::string&)> log;
};

struct NodeEvent {
  enum class Type { Added, Modified, Deleted } type;
  Node node;
};

struct InformerStats {                          // read from other threads
  std::atomic<std::uint64_t> lists{0};          // complete (all pages) lists
  std::atomic<std::uint64_t> watches{0};        // watch requests made
  std::atomic<std::uint64_t> watchRestarts{0};  // watches that ended and were made again
  std::atomic<std::uint64_t> relists410{0};     // lists made again because of 410 Gone
  std::atomic<std::uint64_t> events{0};         // ADDED, MODIFIED and DELETED handed on
  std::atomic<std::uint64_t> errors{0};         // failed requests, bad answers
  std::atomic<std::int64_t> lastSyncUnixMs{0};  // last list or event or bookmark
};

// How the informer's requests reach the API server: over HTTPS with the kubeconfig config()
// returns, or, in tests, from a script.
class ListWatchClient {
 public:
  struct Limits {
    std::chrono::milliseconds headers;   // connect + response headers
    std::chrono::milliseconds idle;      // no byte for this long
    std::chrono::milliseconds duration;  // the whole answer
  };
  virtual ~ListWatchClient() = default;
  // GET pathQuery (e.g. "/api/v1/nodes?limit=500"): as httpStream(). Throws sys::Error when
  // there is no answer (HttpError(Cancelled) once `stop` is triggered).
  virtual HttpStreamResult get(const std::string& pathQuery, const Limits& limits,
                               const std::function<bool(std::string_view)>& onData,
                               std::stop_token stop) = 0;
  // What an answer with an unexpected status to the last get() means, for the log: the server,
  // its message, the credentials used and that the identity needs `permission`.
  virtual std::string explain(long status, std::string_view body,
                              std::string_view permission) const = 0;
};

// The client NodeInformer(config, options) uses: every get() calls config() and sends the request
// with that kubeconfig's server, CA and credentials.
std::unique_ptr<ListWatchClient> httpsListWatch(std::function<Kubeconfig()> config);

// The delays between attempts: each next() waits uniformly between half and all of a delay that
// starts at `initial` and doubles up to `max`; reset() starts over.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint64_t seed);
  std::chrono::milliseconds next();
  void reset() { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_, current_;
  std::mt19937_64 rng_;
};

class NodeInformer {
 public:
  // config() is called for every request, so that a rotated token, CA or kubeconfig is used from
  // the next request on.
  NodeInformer(std::function<Kubeconfig()> config, InformerOptions options);
  NodeInformer(std::unique_ptr<ListWatchClient> client, InformerOptions options);
  ~NodeInformer();
  NodeInformer(const NodeInformer&) = delete;
  NodeInformer& operator=(const NodeInformer&) = delete;

  // Lists (paginated), calls onSync with every Node, then watches from the list's
  // resourceVersion with bookmarks, calling onEvent per change; relists on 410 Gone or an
  // expired continue token; reconnects with backoff + jitter; returns within ~1 s of
  // stop.request_stop(). Callbacks run on the calling thread; what they throw ends run().
  // Never throws for network/API errors (they are logged through options.log and counted);
  // throws Error(InvalidConfig) for bad options, and what config() throws the first time it is
  // called (a kubeconfig that cannot be used at start; later failures are retried).
  void run(std::stop_token stop, const std::function<void(std::vector<Node>)>& onSync,
           const std::function<void(const NodeEvent&)>& onEvent);
  const InformerStats& stats() const { return stats_; }

 private:
  enum class End { Ended, Gone, Failed, Stopped };
  struct Watched {
    End end;
    bool healthy;  // lasted long enough to start over without backing off
  };
  struct Listed {
    bool ok = false;
    bool expiredContinue = false;
    std::vector<Node> nodes;
    std::string resourceVersion;
  };

  Listed list(std::stop_token stop);
  Watched watch(std::string& resourceVersion, std::stop_token stop,
                const std::function<void(const NodeEvent&)>& onEvent);
  void log(sys::LogLevel level, const std::string& msg) const;
  void synced();

  std::function<Kubeconfig()> config_;
  std::unique_ptr<ListWatchClient> client_;
  InformerOptions options_;
  InformerStats stats_;
  std::mt19937_64 rng_;
};

}  // namespace dualstack::k8s

#include "dualstack/k8s/informer.hpp"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <exception>
#include <mutex>
#include <utility>

#include "client.hpp"
#include "dualstack/k8s/watch.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/logfmt.hpp"

namespace dualstack::k8s {

using std::chrono::milliseconds;
using sys::Code;
using sys::Error;
using sys::LogLevel;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kNodes = "/api/v1/nodes";
constexpr const char* kListWatch = "`list` and `watch` on `nodes`";
// kube-apiserver ends requests other than watches after a minute (--request-timeout), so a page
// that takes longer is one the server has given up on as well.
constexpr milliseconds kMaxPageDuration{60000};
// A watch that ends sooner than this without a single line is treated like a failure (with
// backoff): a server closing every watch at once must not be asked again at once.
constexpr milliseconds kMinHealthyWatch{1000};
// How much of an error answer is kept for the log.
constexpr std::size_t kMaxErrorBody = 64U << 10;

std::string urlEncode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

std::string secondsText(milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

bool waitFor(milliseconds d, std::stop_token stop) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, stop, d, [] { return false; });
  return !stop.stop_requested();
}

// GET over HTTPS with the kubeconfig config() gives at the time of the request.
class HttpsListWatch final : public ListWatchClient {
 public:
  explicit HttpsListWatch(std::function<Kubeconfig()> config) : config_(std::move(config)) {}

  HttpStreamResult get(const std::string& pathQuery, const Limits& limits,
                       const std::function<bool(std::string_view)>& onData,
                       std::stop_token stop) override {
    kc_ = config_();
    request_ = detail::apiRequest(kc_, "GET", pathQuery, limits.headers);
    request_.idleTimeout = limits.idle;
    request_.maxDuration = limits.duration;
    request_.maxBody = kMaxErrorBody;
    try {
      return httpStream(request_, onData, stop);
    } catch (const HttpError& e) {
      if (e.failure() == HttpFailure::Cancelled) throw;
      detail::throwNoAnswer(e, kc_, request_);
    }
  }

  std::string explain(long status, std::string_view body,
                      std::string_view permission) const override {
    try {
      detail::throwForStatus(status, body, kc_, request_, "GET " + request_.url, permission);
    } catch (const Error& e) {
      return e.msg();
    }
  }

 private:
  std::function<Kubeconfig()> config_;
  Kubeconfig kc_;
  HttpRequest request_;
};

void logToStderr(LogLevel level, const std::string& msg) {
  if (level == LogLevel::Debug) return;
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char when[80];
  std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  const std::string line = std::string("time=") + when +
                           " level=" + (level == LogLevel::Error ? "error" : "info") +
                           " component=node-informer msg=" + sys::logValue(msg) + "\n";
  const ssize_t n = ::write(2, line.data(), line.size());
  (void)n;
}

}  // namespace

std::unique_ptr<ListWatchClient> httpsListWatch(std::function<Kubeconfig()> config) {
  return std::make_unique<HttpsListWatch>(std::move(config));
}

Backoff::Backoff(milliseconds initial, milliseconds max, std::uint64_t seed)
    : initial_(initial), max_(std::max(max, initial)), current_(initial), rng_(seed) {}

milliseconds Backoff::next() {
  const milliseconds d = current_;
  current_ = std::min(max_, current_ * 2);
  std::uniform_int_distribution<std::int64_t> pick(d.count() / 2, d.count());
  return milliseconds(pick(rng_));
}

NodeInformer::NodeInformer(std::function<Kubeconfig()> config, InformerOptions options)
    : config_(std::move(config)), options_(std::move(options)), rng_(std::random_device{}()) {}

NodeInformer::NodeInformer(std::unique_ptr<ListWatchClient> client, InformerOptions options)
    : client_(std::move(client)), options_(std::move(options)), rng_(std::random_device{}()) {}

NodeInformer::~NodeInformer() = default;

void NodeInformer::log(LogLevel level, const std::string& msg) const {
  if (options_.log) {
    options_.log(level, msg);
  } else {
    logToStderr(level, msg);
  }
}

void NodeInformer::synced() {
  stats_.lastSyncUnixMs.store(
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

void NodeInformer::run(std::stop_token stop, const std::function<void(std::vector<Node>)>& onSync,
                       const std::function<void(const NodeEvent&)>& onEvent) {
  const InformerOptions& o = options_;
  auto bad = [](const std::string& msg) {
    throw Error(Code::InvalidConfig, "node informer: " + msg);
  };
  if (o.pageSize == 0) bad("pageSize must be at least 1");
  if (o.watchTimeout.count() <= 0) bad("watchTimeout must be positive");
  if (o.requestTimeout.count() <= 0) bad("requestTimeout must be positive");
  if (o.idleTimeout.count() <= 0) bad("idleTimeout must be positive");
  if (o.backoffInitial.count() <= 0) bad("backoffInitial must be positive");
  if (o.backoffMax < o.backoffInitial) bad("backoffMax must not be below backoffInitial");
  if (o.maxEventBytes < 1024 || o.maxPageBytes < o.maxEventBytes) {
    bad("maxEventBytes must be at least 1 KiB and maxPageBytes at least maxEventBytes");
  }
  if (!client_) {
    if (!config_) bad("no kubeconfig");
    config_();  // a kubeconfig that cannot be used at start is the caller's error
    client_ = httpsListWatch(config_);
  }

  Backoff backoff(o.backoffInitial, o.backoffMax, rng_());
  std::string resourceVersion;
  bool listed = false;
  bool relistedAtOnce = false;
  while (!stop.stop_requested()) {
    if (!listed) {
      Listed l = list(stop);
      if (stop.stop_requested()) return;
      if (!l.ok) {
        // An expired continue token: start the list over at once, but only once in a row.
        if (l.expiredContinue && !relistedAtOnce) {
          relistedAtOnce = true;
          continue;
        }
        relistedAtOnce = false;
        if (!waitFor(backoff.next(), stop)) return;
        continue;
      }
      relistedAtOnce = false;
      resourceVersion = std::move(l.resourceVersion);
      stats_.lists.fetch_add(1);
      synced();
      log(LogLevel::Info, "listed " + std::to_string(l.nodes.size()) +
                              " nodes at resourceVersion " + resourceVersion);
      onSync(std::move(l.nodes));
      listed = true;
    }

    const Watched w = watch(resourceVersion, stop, onEvent);
    if (w.end == End::Stopped || stop.stop_requested()) return;
    stats_.watchRestarts.fetch_add(1);
    if (w.healthy) backoff.reset();
    switch (w.end) {
      case End::Ended:
        if (!w.healthy && !waitFor(backoff.next(), stop)) return;
        break;
      case End::Gone:
        stats_.relists410.fetch_add(1);
        listed = false;
        if (!w.healthy && !waitFor(backoff.next(), stop)) return;
        break;
      case End::Failed:
        if (!waitFor(backoff.next(), stop)) return;
        break;
      case End::Stopped:
        return;
    }
  }
}

NodeInformer::Listed NodeInformer::list(std::stop_token stop) {
  Listed out;
  std::string cont;
  const ListWatchClient::Limits limits{options_.requestTimeout, options_.requestTimeout,
                                       std::max(kMaxPageDuration, options_.requestTimeout)};
  for (int n = 1;; ++n) {
    std::string path = std::string(kNodes) + "?limit=" + std::to_string(options_.pageSize);
    if (!cont.empty()) path += "&continue=" + urlEncode(cont);
    const std::string what = "list nodes (page " + std::to_string(n) + ")";
    std::size_t bytes = 0;
    std::size_t items = 0;
    NodeListDecoder decoder(
        [&](Node&& node, std::string&& /*rv*/) {
          if (++items > options_.pageSize) {
            throw Error(Code::DecodeFailure,
                        "more than the " + std::to_string(options_.pageSize) + " items asked for");
          }
          out.nodes.push_back(std::move(node));
        },
        "the answer to " + what, options_.maxEventBytes);
    try {
      log(LogLevel::Debug, "GET " + path);
      const HttpStreamResult r = client_->get(
          path, limits,
          [&](std::string_view data) {
            bytes += data.size();
            if (bytes > options_.maxPageBytes) {
              throw Error(Code::IoFailure, "a page of " + std::to_string(options_.pageSize) +
                                               " nodes is larger than " +
                                               std::to_string(options_.maxPageBytes) +
                                               " bytes: lower the page size");
            }
            decoder.feed(data);
            return true;
          },
          stop);
      if (r.status == 410 && !cont.empty()) {
        stats_.errors.fetch_add(1);
        out.expiredContinue = true;
        log(LogLevel::Info, what +
                                ": the continue token expired (410 Gone): listing again from "
                                "the start");
        return out;
      }
      if (r.status != 200) {
        throw Error(Code::IoFailure, client_->explain(r.status, r.body, kListWatch));
      }
      const NodeListPage p = decoder.finish();
      out.resourceVersion = p.resourceVersion;
      cont = p.continueToken;
    } catch (const HttpError& e) {
      if (e.failure() == HttpFailure::Cancelled || stop.stop_requested()) return out;
      stats_.errors.fetch_add(1);
      log(LogLevel::Error, what + ": " + e.msg());
      return out;
    } catch (const Error& e) {
      if (stop.stop_requested()) return out;
      stats_.errors.fetch_add(1);
      log(LogLevel::Error, what + ": " + e.msg());
      return out;
    }
    if (cont.empty()) break;
  }
  out.ok = true;
  return out;
}

NodeInformer::Watched NodeInformer::watch(std::string& resourceVersion, std::stop_token stop,
                                          const std::function<void(const NodeEvent&)>& onEvent) {
  // Like client-go: between watchTimeout and twice that, so that the watches of many clients
  // do not all end at once.
  std::uniform_real_distribution<double> jitter(1.0, 2.0);
  const auto timeout = std::chrono::seconds(
      static_cast<std::int64_t>(static_cast<double>(options_.watchTimeout.count()) * jitter(rng_)));
  const std::string path =
      std::string(kNodes) + "?watch=1&resourceVersion=" + urlEncode(resourceVersion) +
      "&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout.count());
  const std::string what = "watch nodes from resourceVersion " + resourceVersion;
  const ListWatchClient::Limits limits{options_.requestTimeout, options_.idleTimeout,
                                       timeout + options_.idleTimeout};
  WatchDecoder decoder(options_.maxEventBytes);
  const Clock::time_point start = Clock::now();
  std::uint64_t lines = 0;
  End end = End::Ended;
  std::string why;
  std::exception_ptr callbackFailed;  // what onEvent threw: it ends run(), not just this watch

  auto healthy = [&] { return Clock::now() - start >= kMinHealthyWatch; };
  auto onLine = [&](WatchEvent&& e) {
    ++lines;
    switch (e.type) {
      case WatchEvent::Type::Bookmark:
        resourceVersion = std::move(e.resourceVersion);
        synced();
        return true;
      case WatchEvent::Type::Error:
        end = e.code == 410 ? End::Gone : End::Failed;
        why = "ERROR event (" + std::to_string(e.code) + " " + e.reason + "): " + e.message;
        return false;
      case WatchEvent::Type::Added:
      case WatchEvent::Type::Modified:
      case WatchEvent::Type::Deleted:
        break;
    }
    resourceVersion = std::move(e.resourceVersion);
    stats_.events.fetch_add(1);
    synced();
    const NodeEvent ev{e.type == WatchEvent::Type::Added      ? NodeEvent::Type::Added
                       : e.type == WatchEvent::Type::Modified ? NodeEvent::Type::Modified
                                                              : NodeEvent::Type::Deleted,
                       std::move(e.node)};
    try {
      onEvent(ev);
    } catch (...) {
      callbackFailed = std::current_exception();
      end = End::Stopped;
      return false;
    }
    return true;
  };

  stats_.watches.fetch_add(1);
  try {
    log(LogLevel::Debug, "GET " + path);
    const HttpStreamResult r = client_->get(
        path, limits,
        [&](std::string_view data) {
          decoder.feed(data, onLine);
          return end == End::Ended;
        },
        stop);
    if (callbackFailed) std::rethrow_exception(callbackFailed);
    if (end == End::Gone) {
      log(LogLevel::Info, what + ": " + why + ": listing again");
      return {End::Gone, healthy()};
    }
    if (end == End::Failed) {
      stats_.errors.fetch_add(1);
      log(LogLevel::Error, what + ": " + why);
      return {End::Failed, healthy()};
    }
    if (r.status == 410) {
      log(LogLevel::Info, what + ": 410 Gone: listing again");
      return {End::Gone, healthy()};
    }
    if (r.status != 200) {
      stats_.errors.fetch_add(1);
      log(LogLevel::Error, what + ": " + client_->explain(r.status, r.body, kListWatch));
      return {End::Failed, healthy()};
    }
    if (decoder.pending() > 0) {
      stats_.errors.fetch_add(1);
      log(LogLevel::Error, what + ": the stream ended inside an event");
      return {End::Failed, healthy()};
    }
    log(healthy() ? LogLevel::Debug : LogLevel::Info,
        what + ": the stream ended after " +
            secondsText(std::chrono::duration_cast<milliseconds>(Clock::now() - start)) + " and " +
            std::to_string(lines) + " lines");
    return {End::Ended, healthy()};
  } catch (const HttpError& e) {
    if (callbackFailed) std::rethrow_exception(callbackFailed);
    if (e.failure() == HttpFailure::Cancelled || stop.stop_requested())
      return {End::Stopped, false};
    stats_.errors.fetch_add(1);
    log(LogLevel::Error, what + ": " + e.msg());
  } catch (const Error& e) {
    if (callbackFailed) std::rethrow_exception(callbackFailed);
    if (stop.stop_requested()) return {End::Stopped, false};
    stats_.errors.fetch_add(1);
    log(LogLevel::Error, what + ": " + e.msg());
  }
  return {End::Failed, healthy()};
}

}  // namespace dualstack::k8s

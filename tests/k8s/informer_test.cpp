// NodeInformer's decisions (relist, re-watch, back off) against a scripted API: no network.
#include "dualstack/k8s/informer.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "apiserver.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/logfmt.hpp"

namespace dualstack::k8s {
namespace {

using namespace testing;
using Clock = std::chrono::steady_clock;

json node(int i, const std::string& rv) {
  const std::string n = std::to_string(i);
  json o = testing::nodeObject("worker-" + n, {"10.244." + n + ".0/24"},
                               {{"InternalIP", "192.168.10." + n}});
  o["metadata"]["resourceVersion"] = rv;
  return o;
}

std::string event(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump() + "\n";
}
std::string bookmark(const std::string& rv) {
  return event("BOOKMARK", {{"kind", "Node"}, {"metadata", {{"resourceVersion", rv}}}});
}
std::string errorEvent(int code) {
  return event("ERROR", {{"kind", "Status"},
                         {"status", "Failure"},
                         {"message", "scripted"},
                         {"reason", code == 410 ? "Expired" : "InternalError"},
                         {"code", code}});
}
std::string page(const std::vector<json>& items, const std::string& rv,
                 const std::string& cont = "") {
  json meta = {{"resourceVersion", rv}};
  if (!cont.empty()) meta["continue"] = cont;
  return json{{"kind", "NodeList"}, {"apiVersion", "v1"}, {"metadata", meta}, {"items", items}}
      .dump();
}

// One scripted answer.
struct Answer {
  long status = 200;
  std::vector<std::string> chunks;  // handed to onData one by one
  bool unreachable = false;         // no answer at all
};

// Answers each list and each watch request with the next scripted answer of its kind; once none
// is left, the request blocks until the informer is stopped, and the script counts as done.
class ScriptedApi final : public ListWatchClient {
 public:
  std::deque<Answer> lists, watches;

  struct Request {
    std::string path;
    Clock::time_point at;
  };

  HttpStreamResult get(const std::string& pathQuery, const Limits& /*limits*/,
                       const std::function<bool(std::string_view)>& onData,
                       std::stop_token stop) override {
    Answer a;
    {
      std::unique_lock lock(m_);
      requests_.push_back({pathQuery, Clock::now()});
      auto& queue = pathQuery.find("watch=1") != std::string::npos ? watches : lists;
      if (queue.empty()) {
        done_ = true;
        cv_.notify_all();
        std::condition_variable_any cv;
        cv.wait(lock, stop, [] { return false; });
        throw HttpError(HttpFailure::Cancelled, Code::TryAgainLater, "cancelled");
      }
      a = std::move(queue.front());
      queue.pop_front();
    }
    if (a.unreachable) {
      throw HttpError(HttpFailure::Unreachable, Code::TryAgainLater, "connection refused");
    }
    HttpStreamResult r;
    r.status = a.status;
    for (const auto& c : a.chunks) {
      if (a.status != 200) {
        r.body += c;
      } else if (!onData(c)) {
        r.stopped = true;
        break;
      }
    }
    return r;
  }

  std::string explain(long status, std::string_view body,
                      std::string_view permission) const override {
    return "status " + std::to_string(status) + ": " + std::string(body) + "; needs " +
           std::string(permission);
  }

  // Waits until every scripted answer was used (false after 20 s).
  bool waitDone() {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return done_; });
  }
  std::vector<Request> requests() {
    std::lock_guard lock(m_);
    return requests_;
  }
  std::vector<std::string> paths() {
    std::vector<std::string> out;
    for (const auto& r : requests()) out.push_back(r.path);
    return out;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::vector<Request> requests_;
};

struct Seen {
  std::vector<std::vector<Node>> syncs;
  std::vector<NodeEvent> events;
  std::vector<std::string> log;
};

class Informer : public ::testing::Test {
 protected:
  Informer() {
    options.backoffInitial = milliseconds(40);
    options.backoffMax = milliseconds(2000);
    options.watchTimeout = std::chrono::seconds(300);
    options.pageSize = 2;
  }

  // Runs the informer until the script is used up, then stops it.
  void run() {
    auto owned = std::make_unique<ScriptedApi>();
    owned->lists = std::move(script.lists);
    owned->watches = std::move(script.watches);
    api = owned.get();
    options.log = [this](sys::LogLevel, const std::string& msg) {
      std::lock_guard lock(m);
      seen.log.push_back(msg);
    };
    informer = std::make_unique<NodeInformer>(std::move(owned), options);
    std::jthread t([this](std::stop_token stop) {
      informer->run(
          stop, [this](std::vector<Node> nodes) { seen.syncs.push_back(std::move(nodes)); },
          [this](const NodeEvent& e) { seen.events.push_back(e); });
    });
    EXPECT_TRUE(api->waitDone()) << "the informer did not use the whole script";
    t.request_stop();
  }

  std::vector<std::string> watchRvs() {
    std::vector<std::string> out;
    for (const auto& p : api->paths()) {
      const auto at = p.find("resourceVersion=");
      if (p.find("watch=1") == std::string::npos || at == std::string::npos) continue;
      out.push_back(p.substr(at + 16, p.find('&', at) - at - 16));
    }
    return out;
  }
  int count(const std::string& what) {
    int n = 0;
    for (const auto& p : api->paths()) n += p.find(what) != std::string::npos ? 1 : 0;
    return n;
  }

  InformerOptions options;
  ScriptedApi script;
  ScriptedApi* api = nullptr;
  std::unique_ptr<NodeInformer> informer;
  std::mutex m;
  Seen seen;
};

Answer ok(std::vector<std::string> chunks) { return {200, std::move(chunks), false}; }

TEST_F(Informer, ListsEveryPageThenWatchesFromTheListsResourceVersion) {
  script.lists = {ok({page({node(1, "3"), node(2, "4")}, "10", "token/1+")}),
                  ok({page({node(3, "5")}, "10")})};
  script.watches = {ok({event("ADDED", node(4, "11"))})};
  run();
  const auto paths = api->paths();
  ASSERT_GE(paths.size(), 3U);
  EXPECT_EQ(paths[0], "/api/v1/nodes?limit=2");
  EXPECT_EQ(paths[1], "/api/v1/nodes?limit=2&continue=token%2F1%2B");
  EXPECT_EQ(paths[2].rfind("/api/v1/nodes?watch=1&resourceVersion=10&allowWatchBookmarks=true"
                           "&timeoutSeconds=",
                           0),
            0U)
      << paths[2];
  const int timeout = std::stoi(paths[2].substr(paths[2].rfind('=') + 1));
  EXPECT_GE(timeout, 300);
  EXPECT_LT(timeout, 600);

  ASSERT_EQ(seen.syncs.size(), 1U);
  ASSERT_EQ(seen.syncs[0].size(), 3U);
  EXPECT_EQ(seen.syncs[0][0].name, "worker-1");
  EXPECT_EQ(seen.syncs[0][2].name, "worker-3");
  EXPECT_EQ(testing::podCidrTexts(seen.syncs[0][2]), std::vector<std::string>{"10.244.3.0/24"});
  ASSERT_EQ(seen.events.size(), 1U);
  EXPECT_EQ(seen.events[0].type, NodeEvent::Type::Added);
  EXPECT_EQ(seen.events[0].node.name, "worker-4");
  EXPECT_EQ(informer->stats().lists.load(), 1U);
  EXPECT_EQ(informer->stats().events.load(), 1U);
  EXPECT_GT(informer->stats().lastSyncUnixMs.load(), 0);
}

TEST_F(Informer, ChunksSplitLinesAnywhere) {
  const std::string a = event("ADDED", node(1, "11"));
  const std::string b = event("MODIFIED", node(1, "12"));
  const std::string c = event("DELETED", node(1, "13"));
  script.lists = {ok({page({}, "10")})};
  // Two events and half of the third in one chunk, the rest byte by byte.
  std::vector<std::string> chunks = {a + b + c.substr(0, 20)};
  for (std::size_t i = 20; i < c.size(); ++i) chunks.push_back(c.substr(i, 1));
  script.watches = {ok(chunks)};
  run();
  ASSERT_EQ(seen.events.size(), 3U);
  EXPECT_EQ(seen.events[0].type, NodeEvent::Type::Added);
  EXPECT_EQ(seen.events[1].type, NodeEvent::Type::Modified);
  EXPECT_EQ(seen.events[2].type, NodeEvent::Type::Deleted);
  EXPECT_EQ(seen.events[2].node.name, "worker-1");
  EXPECT_EQ(watchRvs(), (std::vector<std::string>{"10", "13"}));
}

TEST_F(Informer, BookmarksMoveTheResourceVersionWithoutACallback) {
  script.lists = {ok({page({node(1, "3")}, "10")})};
  script.watches = {ok({bookmark("15"), bookmark("20")})};
  run();
  EXPECT_TRUE(seen.events.empty());
  EXPECT_EQ(informer->stats().events.load(), 0U);
  // The stream ended cleanly: watch again from the last bookmark, no relist.
  EXPECT_EQ(watchRvs(), (std::vector<std::string>{"10", "20"}));
  EXPECT_EQ(count("limit="), 1);
}

TEST_F(Informer, CleanEndWatchesAgainFromTheLastEventWithoutRelisting) {
  script.lists = {ok({page({node(1, "3")}, "10")})};
  script.watches = {ok({event("MODIFIED", node(1, "17"))}), ok({event("ADDED", node(2, "18"))})};
  run();
  EXPECT_EQ(watchRvs(), (std::vector<std::string>{"10", "17", "18"}));
  EXPECT_EQ(informer->stats().lists.load(), 1U);
  EXPECT_EQ(seen.syncs.size(), 1U);
  EXPECT_EQ(informer->stats().watchRestarts.load(), 2U);
  EXPECT_EQ(informer->stats().errors.load(), 0U);
}

TEST_F(Informer, Error410EventRelists) {
  script.lists = {ok({page({node(1, "3")}, "10")}),
                  ok({page({node(1, "3"), node(2, "30")}, "31")})};
  script.watches = {
      ok({event("ADDED", node(5, "12")), errorEvent(410), event("ADDED", node(6, "13"))})};
  run();
  // The event after the ERROR is not handed on; the second list's state is.
  ASSERT_EQ(seen.events.size(), 1U);
  ASSERT_EQ(seen.syncs.size(), 2U);
  EXPECT_EQ(seen.syncs[1].size(), 2U);
  EXPECT_EQ(count("limit="), 2);
  EXPECT_EQ(watchRvs(), (std::vector<std::string>{"10", "31"}));
  EXPECT_EQ(informer->stats().relists410.load(), 1U);
  EXPECT_EQ(informer->stats().lists.load(), 2U);
}

TEST_F(Informer, Http410OnTheWatchRelists) {
  script.lists = {ok({page({}, "10")}), ok({page({}, "40")})};
  script.watches = {{410, {"{\"kind\":\"Status\",\"code\":410}"}, false}};
  run();
  EXPECT_EQ(watchRvs(), (std::vector<std::string>{"10", "40"}));
  EXPECT_EQ(informer->stats().relists410.load(), 1U);
}

TEST_F(Informer, OtherErrorEventsReconnectWithBackoffWithoutRelisting) {
  options.backoffInitial = milliseconds(200);
  script.lists = {ok({page({}, "10")})};
  script.watches = {ok({event("ADDED", node(1, "12")), errorEvent(500)}), ok({errorEvent(500)})};
  run();
  EXPECT_EQ(watchRvs(), (std::vector<std::string>{"10", "12", "12"}));
  EXPECT_EQ(count("limit="), 1);
  EXPECT_EQ(informer->stats().errors.load(), 2U);
  const auto r = api->requests();
  // Jittered between half and all of 200 ms, then of 400 ms.
  EXPECT_GE(r[2].at - r[1].at, milliseconds(100));
  EXPECT_GE(r[3].at - r[2].at, milliseconds(200));
}

TEST_F(Informer, GarbageReconnectsFromTheLastGoodResourceVersion) {
  script.lists = {ok({page({}, "10")})};
  script.watches = {
      ok({event("ADDED", node(1, "12")) + "<html>oops</html>\n" + event("ADDED", node(2, "13"))}),
      ok({"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":5}}}\n"})};
  run();
  ASSERT_EQ(seen.events.size(), 1U);
  EXPECT_EQ(seen.events[0].node.name, "worker-1");
  EXPECT_EQ(watchRvs(), (std::vector<std::string>{"10", "12", "12"}));
  EXPECT_EQ(count("limit="), 1);
  EXPECT_EQ(informer->stats().errors.load(), 2U);
  bool logged = false;
  for (const auto& l : seen.log) logged = logged || l.find("not valid JSON") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_F(Informer, AnOverLongLineReconnects) {
  options.maxEventBytes = 2048;
  json big = node(1, "12");
  big["metadata"]["annotations"]["big"] = std::string(4096, 'x');
  script.lists = {ok({page({}, "10")})};
  script.watches = {ok({event("ADDED", big)})};
  run();
  EXPECT_TRUE(seen.events.empty());
  EXPECT_EQ(watchRvs(), (std::vector<std::string>{"10", "10"}));
  EXPECT_EQ(informer->stats().errors.load(), 1U);
}

TEST_F(Informer, AStreamCutInsideAnEventIsAFailure) {
  const std::string e = event("ADDED", node(1, "12"));
  script.lists = {ok({page({}, "10")})};
  script.watches = {ok({e + e.substr(0, 30)})};
  run();
  EXPECT_EQ(seen.events.size(), 1U);
  EXPECT_EQ(watchRvs(), (std::vector<std::string>{"10", "12"}));
  EXPECT_EQ(informer->stats().errors.load(), 1U);
}

TEST_F(Informer, AnExpiredContinueTokenStartsTheListOver) {
  script.lists = {ok({page({node(1, "3"), node(2, "4")}, "10", "c1")}),
                  {410, {"{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}"}, false},
                  ok({page({node(1, "3"), node(2, "4")}, "20", "c2")}),
                  ok({page({node(3, "19")}, "20")})};
  run();
  const auto paths = api->paths();
  ASSERT_GE(paths.size(), 5U);
  EXPECT_EQ(paths[1], "/api/v1/nodes?limit=2&continue=c1");
  EXPECT_EQ(paths[2], "/api/v1/nodes?limit=2");
  EXPECT_EQ(paths[3], "/api/v1/nodes?limit=2&continue=c2");
  // One sync, with the consistent second list only.
  ASSERT_EQ(seen.syncs.size(), 1U);
  EXPECT_EQ(seen.syncs[0].size(), 3U);
  EXPECT_EQ(watchRvs(), std::vector<std::string>{"20"});
  // At once, not after a backoff: the token expired, nothing failed.
  EXPECT_LT(api->requests()[2].at - api->requests()[1].at, milliseconds(20));
  bool logged = false;
  for (const auto& l : seen.log)
    logged = logged || l.find("continue token expired") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_F(Informer, FailedListsBackOffExponentially) {
  options.backoffInitial = milliseconds(50);
  script.lists = {{0, {}, true},
                  {503, {"overloaded"}, false},
                  {0, {}, true},
                  {0, {}, true},
                  ok({page({}, "10")})};
  run();
  const auto r = api->requests();
  ASSERT_GE(r.size(), 5U);
  for (std::size_t i = 1; i < 5; ++i) {
    // Half of 50, 100, 200, 400 ms at least.
    EXPECT_GE(r[i].at - r[i - 1].at, milliseconds(25 << (i - 1))) << "attempt " << i;
  }
  EXPECT_EQ(informer->stats().errors.load(), 4U);
  EXPECT_EQ(seen.syncs.size(), 1U);
  bool explained = false;
  for (const auto& l : seen.log) {
    explained = explained || (l.find("status 503: overloaded") != std::string::npos &&
                              l.find("`list` and `watch` on `nodes`") != std::string::npos);
  }
  EXPECT_TRUE(explained);
}

TEST_F(Informer, WatchesThatEndAtOnceAreNotRetriedAtOnce) {
  options.backoffInitial = milliseconds(100);
  options.backoffMax = milliseconds(400);
  script.lists = {ok({page({}, "10")})};
  for (int i = 0; i < 5; ++i) script.watches.push_back(ok({}));
  script.watches.push_back(ok({bookmark("11")}));
  for (int i = 0; i < 3; ++i) script.watches.push_back(ok({errorEvent(410)}));
  for (int i = 0; i < 3; ++i) script.lists.push_back(ok({page({}, "10")}));
  run();
  const auto r = api->requests();
  // Every attempt after the first waited at least half the (doubling) backoff: a server that
  // closes every watch at once, or answers every watch with 410, is not asked in a tight loop.
  // Nine waits of at least 50, 100, 200, 200, ... ms.
  ASSERT_EQ(r.size(), 14U);
  EXPECT_GE(r.back().at - r.front().at, milliseconds(50 + 100 + 200 * 7));
  EXPECT_EQ(informer->stats().relists410.load(), 3U);
}

TEST_F(Informer, StopEndsRunWhileWaitingAndWhileWatching) {
  options.backoffInitial = milliseconds(60000);
  options.backoffMax = milliseconds(60000);
  for (const bool watching : {false, true}) {
    auto owned = std::make_unique<ScriptedApi>();
    if (watching)
      owned->lists = {ok({page({}, "10")})};
    else
      owned->lists = {{0, {}, true}};  // then a 30-60 s backoff
    NodeInformer inf(std::move(owned), options);
    std::stop_source stop;
    std::jthread t([&] {
      inf.run(
          stop.get_token(), [](std::vector<Node>) {}, [](const NodeEvent&) {});
    });
    std::this_thread::sleep_for(milliseconds(200));
    const auto asked = Clock::now();
    stop.request_stop();
    t.join();
    EXPECT_LT(Clock::now() - asked, milliseconds(1000)) << (watching ? "watching" : "waiting");
  }
}

// Runs inf for at most 10 s.
void runBounded(NodeInformer& inf, const std::function<void(const NodeEvent&)>& onEvent) {
  std::stop_source stop;
  std::jthread watchdog([&](std::stop_token self) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait_for(lock, self, std::chrono::seconds(10), [] { return false; });
    stop.request_stop();
  });
  inf.run(
      stop.get_token(), [](std::vector<Node>) {}, onEvent);
}

TEST_F(Informer, WhatACallbackThrowsEndsRun) {
  auto owned = std::make_unique<ScriptedApi>();
  owned->lists = {ok({page({}, "10")})};
  owned->watches = {ok({event("ADDED", node(1, "11"))})};
  NodeInformer inf(std::move(owned), options);
  EXPECT_THROW(runBounded(inf, [](const NodeEvent&) { throw std::runtime_error("agent failed"); }),
               std::runtime_error);
}

TEST(InformerOptions, BadOptionsAreRefused) {
  for (int which = 0; which < 4; ++which) {
    InformerOptions o;
    if (which == 0) o.pageSize = 0;
    if (which == 1) o.backoffMax = milliseconds(1);
    if (which == 2) o.idleTimeout = std::chrono::seconds(0);
    if (which == 3) o.maxPageBytes = 10;
    NodeInformer inf(std::make_unique<ScriptedApi>(), o);
    try {
      runBounded(inf, [](const NodeEvent&) {});
      ADD_FAILURE() << "option set " << which << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::InvalidConfig);
    }
  }
}

TEST(Backoff, DoublesUpToTheMaximumWithJitter) {
  Backoff b(milliseconds(100), milliseconds(1000), 42);
  const std::vector<long> full = {100, 200, 400, 800, 1000, 1000};
  for (const long d : full) {
    const auto w = b.next().count();
    EXPECT_GE(w, d / 2);
    EXPECT_LE(w, d);
  }
  b.reset();
  EXPECT_LE(b.next().count(), 100);
  // Jitter: not every client waits the same.
  Backoff x(milliseconds(1000), milliseconds(1000), 1);
  Backoff y(milliseconds(1000), milliseconds(1000), 2);
  bool differ = false;
  for (int i = 0; i < 5; ++i) differ = differ || x.next() != y.next();
  EXPECT_TRUE(differ);
}

}  // namespace
}  // namespace dualstack::k8s

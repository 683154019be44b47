// NodeInformer against the test API server (tests/k8s/apiserver.py) over real TLS on loopback.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "apiserver.hpp"
#include "dualstack/k8s/informer.hpp"
#include "dualstack/sys/logfmt.hpp"

namespace dualstack::k8s {
namespace {

using namespace testing;
using Clock = std::chrono::steady_clock;

constexpr const char* kToken = "informer-token-1";

json worker(int i, const std::string& v4 = "") {
  const std::string n = std::to_string(i);
  return nodeObject(
      "worker-" + n, {"10.244." + n + ".0/24", "fd00:10:244:" + n + "::/64"},
      {{"InternalIP", v4.empty() ? "192.168.10." + n : v4}, {"InternalIP", "fd00::" + n}});
}

// The informer on its own thread, and what it handed on: the node map it implies.
class Running {
 public:
  Running(std::unique_ptr<NodeInformer> informer) : informer_(std::move(informer)) {
    thread_ = std::jthread([this](std::stop_token stop) {
      informer_->run(
          stop,
          [this](std::vector<Node> nodes) {
            std::lock_guard lock(m_);
            ++syncs_;
            nodes_.clear();
            for (auto& n : nodes) nodes_[n.name] = std::move(n);
            cv_.notify_all();
          },
          [this](const NodeEvent& e) {
            std::lock_guard lock(m_);
            ++events_;
            if (e.type == NodeEvent::Type::Deleted) {
              nodes_.erase(e.node.name);
            } else {
              nodes_[e.node.name] = e.node;
            }
            cv_.notify_all();
          });
    });
  }
  ~Running() { stop(); }

  void stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }

  // Waits (at most 20 s) until pred(nodes) holds.
  bool waitFor(const std::function<bool(const std::map<std::string, Node>&)>& pred) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return pred(nodes_); });
  }
  bool waitForNode(const std::string& name, const std::string& v4 = "") {
    return waitFor([&](const auto& nodes) {
      const auto it = nodes.find(name);
      return it != nodes.end() && (v4.empty() || it->second.addresses.at(0).address.str() == v4);
    });
  }
  int syncs() {
    std::lock_guard lock(m_);
    return syncs_;
  }
  std::size_t size() {
    std::lock_guard lock(m_);
    return nodes_.size();
  }
  const InformerStats& stats() const { return informer_->stats(); }

 private:
  std::unique_ptr<NodeInformer> informer_;
  std::mutex m_;
  std::condition_variable cv_;
  std::map<std::string, Node> nodes_;
  int syncs_ = 0;
  int events_ = 0;
  std::jthread thread_;
};

class InformerApi : public ::testing::Test {
 protected:
  explicit InformerApi(testing::ApiServerOptions o = {0.2, 600}) : server(o) {
    server.setTokens({{kToken, "allow"}});
    options.requestTimeout = milliseconds(5000);
    options.backoffInitial = milliseconds(100);
    options.backoffMax = milliseconds(1000);
    options.log = [this](sys::LogLevel, const std::string& msg) {
      std::lock_guard lock(logMutex);
      log.push_back(msg);
    };
  }

  std::string writeKubeconfig(KubeconfigSpec spec, const std::string& name = "kubeconfig") {
    spec.server = server.url();
    spec.caFile = Pki::get().caCrt;
    const std::string path = tmp.file(name);
    testing::writeText(path, testing::kubeconfigYaml(spec));
    return path;
  }
  void TearDown() override {
    if (!HasFailure()) return;
    std::lock_guard lock(logMutex);
    std::string text = "informer log:\n";
    for (const auto& l : log) text += "  " + l + "\n";
    text += "requests:\n";
    for (const auto& l : server.requestLog()) text += "  " + l + "\n";
    ADD_FAILURE() << text;
  }

  std::unique_ptr<Running> start() {
    KubeconfigSpec s;
    s.token = kToken;
    const std::string path = writeKubeconfig(s);
    return std::make_unique<Running>(
        std::make_unique<NodeInformer>([path] { return loadKubeconfig(path); }, options));
  }

  // The request log's lines that contain `what`.
  std::vector<std::string> requests(const std::string& what) const {
    std::vector<std::string> out;
    for (const auto& l : server.requestLog()) {
      if (l.find(what) != std::string::npos) out.push_back(l);
    }
    return out;
  }
  std::string lastWatchRv() const {
    const auto w = requests("watch=1");
    if (w.empty()) return "";
    const auto at = w.back().find("resourceVersion=") + 16;
    return w.back().substr(at, w.back().find('&', at) - at);
  }
  bool logged(const std::string& what) {
    std::lock_guard lock(logMutex);
    for (const auto& l : log) {
      if (l.find(what) != std::string::npos) return true;
    }
    return false;
  }
  // Waits (at most 20 s) until `cond` holds.
  static bool eventually(const std::function<bool()>& cond) {
    const auto until = Clock::now() + std::chrono::seconds(20);
    while (!cond()) {
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return true;
  }

  TestApiServer server;
  dualstack::testing::TempDir tmp;
  InformerOptions options;
  std::mutex logMutex;
  std::vector<std::string> log;
};

TEST_F(InformerApi, ListsInPagesThenWatches) {
  std::vector<json> nodes;
  for (int i = 1; i <= 7; ++i) nodes.push_back(worker(i));
  server.setNodes(nodes);
  options.pageSize = 3;
  auto r = start();
  ASSERT_TRUE(r->waitFor([](const auto& n) { return n.size() == 7; }));
  const auto pages = requests("/api/v1/nodes?limit=3");
  ASSERT_EQ(pages.size(), 3U);
  EXPECT_EQ(pages[0], "/api/v1/nodes?limit=3 200 token");
  EXPECT_NE(pages[1].find("&continue="), std::string::npos);
  EXPECT_NE(pages[2].find("&continue="), std::string::npos);
  ASSERT_TRUE(eventually([&] { return !requests("watch=1").empty(); }));
  EXPECT_EQ(lastWatchRv(), server.resourceVersion());
  EXPECT_NE(requests("watch=1")[0].find("&allowWatchBookmarks=true&timeoutSeconds="),
            std::string::npos);

  // Changes arrive as events.
  server.setNode(worker(8));
  ASSERT_TRUE(r->waitForNode("worker-8"));
  server.setNode(worker(3, "192.168.99.3"));
  ASSERT_TRUE(r->waitForNode("worker-3", "192.168.99.3"));
  server.deleteNode("worker-1");
  ASSERT_TRUE(r->waitFor([](const auto& n) { return n.count("worker-1") == 0; }));
  EXPECT_EQ(r->stats().events.load(), 3U);
  EXPECT_EQ(r->stats().lists.load(), 1U);
  EXPECT_EQ(r->stats().errors.load(), 0U);
  EXPECT_EQ(requests("limit=").size(), 3U);
}

TEST_F(InformerApi, AnExpiredContinueTokenListsAgain) {
  for (int i = 1; i <= 4; ++i) server.setNode(worker(i));
  options.pageSize = 2;
  // Between the first and the second page, the history the continue token needs is compacted
  // away (a change, then a compaction), as etcd does after five minutes.
  bool first = true;
  KubeconfigSpec s;
  s.token = kToken;
  const std::string path = writeKubeconfig(s);
  class Compacting final : public ListWatchClient {
   public:
    Compacting(std::unique_ptr<ListWatchClient> inner, std::function<void()> hook)
        : inner_(std::move(inner)), hook_(std::move(hook)) {}
    HttpStreamResult get(const std::string& pathQuery, const Limits& limits,
                         const std::function<bool(std::string_view)>& onData,
                         std::stop_token stop) override {
      if (pathQuery.find("continue=") != std::string::npos) hook_();
      return inner_->get(pathQuery, limits, onData, stop);
    }
    std::string explain(long status, std::string_view body,
                        std::string_view permission) const override {
      return inner_->explain(status, body, permission);
    }

   private:
    std::unique_ptr<ListWatchClient> inner_;
    std::function<void()> hook_;
  };
  auto client =
      std::make_unique<Compacting>(httpsListWatch([path] { return loadKubeconfig(path); }), [&] {
        if (!first) return;
        first = false;
        server.setNode(worker(5));
        server.compact();
      });
  Running r(std::make_unique<NodeInformer>(std::move(client), options));
  ASSERT_TRUE(r.waitFor([](const auto& n) { return n.size() == 5; }));
  EXPECT_EQ(r.syncs(), 1);
  EXPECT_NE(requests("&continue=")[0].find(" 410 token"), std::string::npos);
  EXPECT_EQ(requests("/api/v1/nodes?limit=2 200").size(), 2U);
  EXPECT_TRUE(logged("continue token expired"));
}

TEST_F(InformerApi, BookmarksCarryTheWatchOverQuietPeriods) {
  server.setNode(worker(1));
  auto r = start();
  ASSERT_TRUE(r->waitForNode("worker-1"));
  const std::string listed = server.resourceVersion();
  // Other resources change: the resourceVersion moves on, no Node event. Bookmarks bring it.
  server.bump();
  const std::string bumped = server.bump();
  ASSERT_TRUE(eventually(
      [&] { return r->stats().lastSyncUnixMs.load() > 0 && r->stats().watches.load() >= 1; }));
  std::this_thread::sleep_for(milliseconds(600));  // a few bookmarks (every 0.2 s)
  // Now the history before `bumped` goes: a watch from the list's resourceVersion would get 410;
  // one from the bookmark's does not.
  server.compact();
  server.closeWatches();
  ASSERT_TRUE(eventually([&] { return requests("watch=1").size() >= 2; }));
  EXPECT_EQ(lastWatchRv(), bumped) << "listed at " << listed;
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(r->stats().relists410.load(), 0U);
  EXPECT_EQ(r->stats().lists.load(), 1U);
  EXPECT_EQ(r->stats().events.load(), 0U);
  EXPECT_EQ(requests("limit=").size(), 1U);
}

TEST_F(InformerApi, CompactionWhileAwayRelists) {
  server.setNode(worker(1));
  auto r = start();
  ASSERT_TRUE(r->waitForNode("worker-1"));
  ASSERT_TRUE(eventually([&] { return r->stats().watches.load() >= 1; }));
  // The informer is cut off; meanwhile a node changes and the history is compacted.
  server.fail(503, 1.5);
  server.closeWatches(true);
  server.setNode(worker(2));
  server.compact();
  ASSERT_TRUE(r->waitForNode("worker-2"));
  EXPECT_EQ(r->stats().relists410.load(), 1U);
  EXPECT_EQ(r->stats().lists.load(), 2U);
  EXPECT_EQ(r->syncs(), 2);
  EXPECT_TRUE(logged("410"));
}

TEST_F(InformerApi, ServerRestartResumesTheWatchWithoutRelisting) {
  server.setNode(worker(1));
  auto r = start();
  ASSERT_TRUE(r->waitForNode("worker-1"));
  ASSERT_TRUE(eventually([&] { return requests("watch=1").size() == 1; }));
  const std::string before = server.resourceVersion();
  server.stop();
  std::this_thread::sleep_for(milliseconds(500));
  server.restart();
  server.setNode(worker(2));
  ASSERT_TRUE(r->waitForNode("worker-2"));
  EXPECT_EQ(r->stats().lists.load(), 1U);
  EXPECT_EQ(r->stats().relists410.load(), 0U);
  EXPECT_GE(r->stats().watchRestarts.load(), 1U);
  // The watch after the restart started from where the informer was (the log survives restarts).
  EXPECT_GE(requests("watch=1&resourceVersion=" + before + "&").size(), 2U);
}

TEST_F(InformerApi, ConfigIsReadForEveryConnection) {
  // A rotated token: written to the token file, the old one revoked, streams cut.
  testing::writeText(tmp.file("token"), std::string(kToken) + "\n");
  KubeconfigSpec s;
  s.tokenFile = tmp.file("token");
  const std::string path = writeKubeconfig(s);
  std::atomic<int> calls{0};
  Running r(std::make_unique<NodeInformer>(
      [&] {
        ++calls;
        return loadKubeconfig(path);
      },
      options));
  server.setNode(worker(1));
  ASSERT_TRUE(r.waitForNode("worker-1"));
  ASSERT_TRUE(eventually([&] { return requests("watch=1").size() == 1; }));
  testing::writeText(tmp.file("token"), "informer-token-2\n");
  server.setTokens({{"informer-token-2", "allow"}});
  server.closeWatches();
  server.setNode(worker(2));
  ASSERT_TRUE(r.waitForNode("worker-2"));
  EXPECT_EQ(r.stats().errors.load(), 0U);
  EXPECT_EQ(r.stats().lists.load(), 1U);
  EXPECT_GE(calls.load(), 3);  // at start, then the list, then each watch

  // A kubeconfig rewritten with a token the server refuses: 401s are logged and retried, and
  // once the kubeconfig is right again the informer carries on.
  KubeconfigSpec bad;
  bad.token = "revoked";
  writeKubeconfig(bad);
  server.closeWatches();
  ASSERT_TRUE(eventually([&] { return r.stats().errors.load() >= 1; }));
  // The error is counted before its log line is written.
  EXPECT_TRUE(eventually([&] { return logged("401 Unauthorized"); }));
  EXPECT_TRUE(logged("`list` and `watch` on `nodes`"));
  writeKubeconfig(s);
  server.setNode(worker(3));
  ASSERT_TRUE(r.waitForNode("worker-3"));
}

TEST_F(InformerApi, AServerThatClosesEveryWatchAtOnceIsNotHammered) {
  options.backoffInitial = milliseconds(200);
  options.backoffMax = milliseconds(5000);
  for (const std::string mode : {"close", "garbage"}) {
    server.set("watch-mode", mode);
    const std::size_t before = requests("watch=1").size();
    auto r = start();
    std::this_thread::sleep_for(milliseconds(3000));
    r->stop();
    const std::size_t watches = requests("watch=1").size() - before;
    // Waits of at least 100, 200, 400, 800, 1600 ms: at most 6 watches in 3 s (a tight loop
    // would make hundreds).
    EXPECT_GE(watches, 2U) << mode;
    EXPECT_LE(watches, 6U) << mode;
    EXPECT_EQ(r->stats().lists.load(), 1U) << mode;
  }
  server.set("watch-mode", "normal");
  server.set("list-mode", "garbage");
  auto r = start();
  std::this_thread::sleep_for(milliseconds(3000));
  r->stop();
  EXPECT_LE(requests("limit=").size(), 2U + 6U);
  EXPECT_EQ(r->stats().lists.load(), 0U);
  EXPECT_TRUE(logged("the answer to list nodes (page 1): not valid JSON"));
}

TEST_F(InformerApi, AnIdleWatchIsReplaced) {
  options.idleTimeout = std::chrono::seconds(1);
  server.setNode(worker(1));
  server.set("watch-mode", "hang");
  auto r = start();
  ASSERT_TRUE(r->waitForNode("worker-1"));
  ASSERT_TRUE(eventually([&] { return r->stats().watchRestarts.load() >= 1; }));
  EXPECT_TRUE(logged("no data for 1 s"));
  server.set("watch-mode", "normal");
  server.closeWatches();
  server.setNode(worker(2));
  ASSERT_TRUE(r->waitForNode("worker-2"));
}

TEST_F(InformerApi, StopsWithinASecondWhileWatching) {
  server.setNode(worker(1));
  auto r = start();
  ASSERT_TRUE(r->waitForNode("worker-1"));
  ASSERT_TRUE(eventually([&] { return r->stats().watches.load() >= 1; }));
  const auto asked = Clock::now();
  r->stop();
  EXPECT_LT(Clock::now() - asked, milliseconds(1000));
}

}  // namespace
}  // namespace dualstack::k8s

#include "dualstack/k8s/cache.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "apiserver.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {
namespace {

using sys::Code;
using sys::Error;

CachedNode sample() {
  CachedNode c;
  c.node = parseNode(testing::nodeObject("worker-1", {"fd00:10:244:1::/64", "10.244.1.0/24"},
                                         {{"InternalIP", "fd00:192:168:10::5"},
                                          {"InternalIP", "192.168.10.5"},
                                          {"ExternalIP", "203.0.113.5"}}),
                     "node \"worker-1\"");
  c.kubeconfig = "/etc/cni/net.d/dualstack.kubeconfig";
  c.server = "https://192.168.10.2:6443";
  c.fetchedAt = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714557600123));
  return c;
}

TEST(Cache, FormatIsDocumentedAndRoundTrips) {
  const std::string text = formatCache(sample());
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["node"], "worker-1");
  EXPECT_EQ(j["server"], "https://192.168.10.2:6443");
  EXPECT_EQ(j["fetchedAt"], "2024-05-01T10:00:00.123Z");
  EXPECT_EQ(j["fetchedAtMs"], 1714557600123);
  EXPECT_EQ(j["podCIDRs"], nlohmann::json({"fd00:10:244:1::/64", "10.244.1.0/24"}));
  EXPECT_EQ(j["addresses"][2]["type"], "ExternalIP");
  EXPECT_EQ(j["addresses"][2]["address"], "203.0.113.5");
  EXPECT_EQ(j["addresses"].size(), 3U) << "the Hostname (no IP address) is not in the model";

  const CachedNode back = parseCache(text, "/c.json");
  EXPECT_EQ(back.node.name, "worker-1");
  EXPECT_EQ(testing::podCidrTexts(back.node), testing::podCidrTexts(sample().node));
  EXPECT_EQ(back.node.podCIDRs[1].field, "spec.podCIDRs[1]");
  ASSERT_EQ(back.node.addresses.size(), 3U);
  EXPECT_EQ(back.node.addresses[1].address.str(), "192.168.10.5");
  EXPECT_EQ(back.kubeconfig, sample().kubeconfig);
  EXPECT_EQ(back.fetchedAt, sample().fetchedAt);
}

TEST(Cache, WrittenAtomicallyPrivateAndReplaced) {
  dualstack::testing::TempDir tmp;
  const std::string path = cachePath(tmp.file("networks"), "worker-1");
  EXPECT_EQ(path, tmp.file("networks/.dualstack-k8s/worker-1.json"));
  EXPECT_EQ(readCache(path), std::nullopt);

  writeCache(path, sample());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600U);
  ASSERT_EQ(::stat(tmp.file("networks/.dualstack-k8s").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700U);

  CachedNode next = sample();
  next.node.podCIDRs = {{*ip::Prefix::parse("10.244.9.0/24"), "spec.podCIDRs[0]"}};
  writeCache(path, next);
  EXPECT_EQ(testing::podCidrTexts(readCache(path)->node),
            std::vector<std::string>{"10.244.9.0/24"});
  // Only the cache itself is left: no temp files.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(tmp.file("networks/.dualstack-k8s"))) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"worker-1.json"});
}

// Node caches live on nodes across upgrades: a file the previous version wrote (which kept the
// Hostname, and whatever the API said) reads, and a file written now has every field, of the
// type, that the previous version requires.
TEST(Cache, ReadableAcrossVersions) {
  const std::string old = R"({
  "addresses": [{"address": "192.168.10.5", "type": "InternalIP"},
                {"address": "worker-1", "type": "Hostname"}],
  "fetchedAt": "2024-05-01T10:00:00.123Z", "fetchedAtMs": 1714557600123,
  "kubeconfig": "/etc/cni/net.d/dualstack.kubeconfig", "node": "worker-1",
  "podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"],
  "server": "https://192.168.10.2:6443", "version": 1})";
  const CachedNode c = parseCache(old, "/c.json");
  EXPECT_EQ(c.node.name, "worker-1");
  EXPECT_EQ(testing::podCidrTexts(c.node),
            (std::vector<std::string>{"10.244.1.0/24", "fd00:10:244:1::/64"}));
  ASSERT_EQ(c.node.addresses.size(), 1U);
  EXPECT_EQ(c.node.addresses[0].address.str(), "192.168.10.5");
  EXPECT_TRUE(c.node.unusable.empty());

  // What the previous parser required: version 1, node, kubeconfig and fetchedAtMs, podCIDRs a
  // non-empty array of strings, addresses objects with string type and address.
  const auto j = nlohmann::json::parse(formatCache(c));
  EXPECT_EQ(j["version"], 1);
  EXPECT_TRUE(j["node"].is_string());
  EXPECT_TRUE(j["kubeconfig"].is_string());
  EXPECT_TRUE(j["fetchedAtMs"].is_number_integer());
  ASSERT_TRUE(j["podCIDRs"].is_array());
  ASSERT_FALSE(j["podCIDRs"].empty());
  for (const auto& p : j["podCIDRs"]) EXPECT_TRUE(p.is_string());
  for (const auto& a : j["addresses"]) {
    EXPECT_TRUE(a["type"].is_string());
    EXPECT_TRUE(a["address"].is_string());
  }
  EXPECT_EQ(parseCache(formatCache(c), "/c.json").node.podCIDRs.size(), 2U);
}

// A podCIDR that is no CIDR is the reader's to judge (dualstack-ipam refuses it, naming it).
TEST(Cache, AnUnusablePodCidrIsKeptForTheReader) {
  const CachedNode c = parseCache(
      R"({"version": 1, "node": "a", "kubeconfig": "/k", "fetchedAtMs": 1, "podCIDRs": ["x"]})",
      "/c.json");
  EXPECT_TRUE(c.node.podCIDRs.empty());
  ASSERT_EQ(c.node.unusable.size(), 1U);
  EXPECT_EQ(c.node.unusable[0].field, "spec.podCIDRs[0]");
  EXPECT_EQ(c.node.unusable[0].text, "x");
}

TEST(Cache, MalformedContentIsAnErrorNamingTheFile) {
  for (const std::string text :
       {"", "[]", R"({"version": 2})",
        R"({"version": 1, "node": "a", "kubeconfig": "/k", "fetchedAtMs": 1, "podCIDRs": []})",
        R"({"version": 1, "node": "a", "kubeconfig": "/k", "podCIDRs": ["10.0.0.0/24"]})"}) {
    try {
      parseCache(text, "/x/c.json");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::DecodeFailure) << e.msg();
      EXPECT_NE(e.msg().find("node cache /x/c.json"), std::string::npos) << e.msg();
    }
  }
}

// The clock counts nanoseconds in an int64: a later fetchedAtMs cannot become a time point (it
// was converted with signed overflow, and a corrupt cache could look fresh).
TEST(Cache, FetchedAtMsBeyondTheClockIsRefused) {
  const auto text = [](const std::string& ms) {
    return R"({"version": 1, "node": "a", "kubeconfig": "/k", "fetchedAtMs": )" + ms +
           R"(, "podCIDRs": ["10.0.0.0/24"]})";
  };
  const std::int64_t last = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::duration::max())
                                .count();
  EXPECT_EQ(last, 9223372036854);
  EXPECT_EQ(parseCache(text(std::to_string(last)), "/c").fetchedAt.time_since_epoch(),
            std::chrono::milliseconds(last));
  EXPECT_EQ(parseCache(text("0"), "/c").fetchedAt.time_since_epoch().count(), 0);
  for (const std::string& bad :
       {std::to_string(last + 1), std::string("9223372036854775807"),
        std::string("9223372036854775808"), std::string("18446744073709551615"), std::string("-1"),
        std::string("-9223372036854775808"), std::string("1e300"), std::string("1.5"),
        std::string("\"1\"")}) {
    try {
      parseCache(text(bad), "/x/c.json");
      ADD_FAILURE() << "accepted fetchedAtMs " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::DecodeFailure) << e.msg();
      EXPECT_NE(e.msg().find("node cache /x/c.json"), std::string::npos) << e.msg();
      EXPECT_NE(e.msg().find("fetchedAtMs"), std::string::npos) << e.msg();
    }
  }
}

TEST(Cache, DeeplyNestedContentIsRefused) {
  const std::string text = R"({"version": 1, "node": "a", "kubeconfig": "/k", "fetchedAtMs": 1,
      "podCIDRs": ["10.0.0.0/24"], "addresses": )" +
                           dualstack::testing::nestedJson(100000) + "}";
  try {
    parseCache(text, "/x/c.json");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::DecodeFailure);
    EXPECT_NE(e.msg().find("node cache /x/c.json is nested deeper than 128"), std::string::npos)
        << e.msg();
  }
}

TEST(Cache, AFifoOrALinkInPlaceOfTheCacheIsNamedAtOnce) {
  dualstack::testing::TempDir tmp;
  const std::string path = cachePath(tmp.path(), "worker-1");
  std::filesystem::create_directories(tmp.file(".dualstack-k8s"));
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  ::alarm(30);  // a blocking open fails the test binary instead of hanging it
  try {
    readCache(path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::IoFailure);
    EXPECT_EQ(e.msg(), "node cache " + path + " is a FIFO, not a regular file");
  }
  ::alarm(0);
  std::filesystem::remove(path);
  std::filesystem::create_symlink("/etc/hostname", path);
  try {
    readCache(path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.msg(), "node cache " + path + " is a symbolic link, which is not followed");
  }
  // Replaced, not written through.
  writeCache(path, sample());
  EXPECT_FALSE(std::filesystem::is_symlink(path));
  EXPECT_EQ(readCache(path)->node.name, "worker-1");
}

// A writer killed between creating its temp file and renaming it leaves the temp behind; the next
// write removes those old enough that no live writer can own them.
TEST(Cache, StaleTempFilesOfKilledWritersAreRemoved) {
  dualstack::testing::TempDir tmp;
  const std::string path = cachePath(tmp.path(), "worker-1");
  const std::string dir = tmp.file(".dualstack-k8s");
  std::filesystem::create_directories(dir);
  for (const char* name : {".tmp-999991-0", ".tmp-999992-3", "other-node.json"}) {
    std::ofstream(dir + "/" + name) << "{";
  }
  const timespec old[2] = {{0, UTIME_OMIT}, {std::time(nullptr) - 11 * 60, 0}};
  for (const char* name : {".tmp-999991-0", "other-node.json"}) {
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir + "/" + name).c_str(), old, 0), 0);
  }
  writeCache(path, sample());
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{".tmp-999992-3", "other-node.json", "worker-1.json"}))
      << "only the old temp goes: a young one may be a live writer's, other files are not ours";
}

}  // namespace
}  // namespace dualstack::k8s

// The store lives on a filesystem other programs (host-local, people, a full disk) also touch.
// Whatever is planted there, dualstack-ipam gives a clear error or repairs it, never hands out an
// address twice and never writes through a symlink.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <utime.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>

#include "hardening.hpp"

namespace dualstack::hardening {
namespace {

using nlohmann::json;
using testing::RunResult;

constexpr const char* kNet = "hostile";

// A filesystem mounted for one test and unmounted (lazily, so a stray open fd cannot keep it)
// when the test ends, pass or fail.
class Mount {
 public:
  Mount(const std::string& target, const std::string& type, const std::string& options,
        unsigned long flags = 0)
      : target_(target) {
    fs::create_directories(target);
    if (::mount(type.c_str(), target.c_str(), type.c_str(), flags, options.c_str()) != 0) {
      throw std::runtime_error("mount " + type + " on " + target + ": " + std::strerror(errno));
    }
  }
  // A read-only bind mount of `source` on `target`.
  static void bindReadOnly(const std::string& source, const std::string& target) {
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      throw std::runtime_error("read-only bind mount on " + target + ": " + std::strerror(errno));
    }
  }
  explicit Mount(std::string target) : target_(std::move(target)) {}
  ~Mount() { ::umount2(target_.c_str(), MNT_DETACH); }
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;

 private:
  std::string target_;
};

class HostileStore : public ::testing::Test {
 protected:
  testing::TempDir tmp;
  std::string dataDir = tmp.file("data");
  std::string store = dataDir + "/" + kNet;
  std::string victim = tmp.file("victim");

  void SetUp() override { std::ofstream(victim) << "precious"; }

  json conf(const std::string& version = "1.0.0") const {
    return {{"cniVersion", version},
            {"name", kNet},
            {"type", "dualstack"},
            {"ipam",
             {{"type", "dualstack-ipam"},
              {"dataDir", dataDir},
              {"node", {{"podCIDRs", {"10.252.0.0/29", "fd00:252::/125"}}}}}}};
  }
  RunResult run(const std::string& command, const std::string& id, const json& c) const {
    return testing::runPlugin(testing::binPath("dualstack-ipam"),
                              testing::cniEnv(command, id, "/var/run/netns/hostile"), c.dump());
  }
  RunResult run(const std::string& command, const std::string& id) const {
    return run(command, id, conf());
  }
  RunResult gc(const std::vector<std::string>& valid) const {
    json c = conf("1.1.0");
    c["cni.dev/valid-attachments"] = json::array();
    for (const auto& id : valid) {
      c["cni.dev/valid-attachments"].push_back({{"containerID", id}, {"ifname", "eth0"}});
    }
    return testing::runPlugin(
        testing::binPath("dualstack-ipam"),
        testing::EnvMap{{"CNI_COMMAND", "GC"}, {"CNI_PATH", testing::cniPath()}}, c.dump());
  }
  // Creates the store (an ADD and a DEL), so files can be planted in it; the next ADD starts
  // again from the first address.
  void initStore() const {
    ASSERT_EQ(run("ADD", "init").exitCode, 0);
    ASSERT_EQ(run("DEL", "init").exitCode, 0);
    fs::remove(store + "/last_reserved_ip.0");
    fs::remove(store + "/last_reserved_ip.1");
  }
  static int code(const RunResult& r) {
    const auto j = r.json();
    return j.is_object() && j.contains("code") ? j["code"].get<int>() : -1;
  }
  static std::string msg(const RunResult& r) {
    const auto j = r.json();
    return j.is_object() && j.contains("msg") ? j["msg"].get<std::string>() : r.out;
  }
  void expectVictimUntouched() const {
    EXPECT_EQ(testing::readFile(victim), "precious") << "something was written through a symlink";
  }
  static std::vector<std::string> ips(const RunResult& r) { return resultAddresses(r.out); }
};

TEST_F(HostileStore, GarbageAndTruncatedAllocationFilesCountAsTaken) {
  initStore();
  std::ofstream(store + "/10.252.0.2") << std::string("\0\x01garbage", 9);
  std::ofstream(store + "/10.252.0.3");                        // empty: a write cut short
  std::ofstream(store + "/fd00:252::2") << "half-written-id";  // host-local < 0.7: ID only
  const RunResult r = run("ADD", "c1");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  EXPECT_EQ(ips(r), (std::vector<std::string>{"10.252.0.4", "fd00:252::3"}));
  EXPECT_EQ(testing::readFile(store + "/10.252.0.2"), std::string("\0\x01garbage", 9));
  // DEL of someone else leaves them; GC without them as valid owners frees them.
  ASSERT_EQ(run("DEL", "c1").exitCode, 0);
  EXPECT_TRUE(fs::exists(store + "/10.252.0.2"));
  EXPECT_TRUE(fs::exists(store + "/10.252.0.3"));
  const RunResult g = gc({});
  EXPECT_EQ(g.exitCode, 0) << g.out;
  EXPECT_TRUE(readStore(store).allocations.empty());
}

TEST_F(HostileStore, StaleTempFileIsIgnoredByAddAndRemovedByGc) {
  initStore();
  const std::string temp = store + "/.dualstack/.tmp-999999-0";
  std::ofstream(temp) << "c-dead\r\neth0";
  const ::utimbuf old{::time(nullptr) - 3600, ::time(nullptr) - 3600};
  ASSERT_EQ(::utime(temp.c_str(), &old), 0);
  const RunResult r = run("ADD", "c1");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  EXPECT_EQ(ips(r).front(), "10.252.0.2");
  const RunResult g = gc({"c1"});
  EXPECT_EQ(g.exitCode, 0) << g.out;
  EXPECT_FALSE(fs::exists(temp)) << "GC must remove temp files left by a killed ADD";
  EXPECT_EQ(readStore(store).allocations.size(), 2u);
}

TEST_F(HostileStore, MissingIndexIsRebuilt) {
  const RunResult first = run("ADD", "c1");
  ASSERT_EQ(first.exitCode, 0) << first.out;
  fs::remove_all(store + "/.dualstack");
  const RunResult again = run("ADD", "c1");  // idempotent ADD finds it through the files
  ASSERT_EQ(again.exitCode, 0) << again.out;
  EXPECT_EQ(ips(again), ips(first));
  EXPECT_EQ(run("CHECK", "c1").exitCode, 0);
  const StoreView v = readStore(store);
  EXPECT_EQ(v.allocations.size(), 2u);
  EXPECT_EQ(indexDisagreements(v), "");
  EXPECT_EQ(v.index.count(Owner{"c1", "eth0"}), 1u) << "the index must be rebuilt";
  ASSERT_EQ(run("DEL", "c1").exitCode, 0);
  EXPECT_TRUE(readStore(store).allocations.empty());
}

TEST_F(HostileStore, LastReservedOutsideTheRangeOrGarbageIsIgnored) {
  initStore();
  std::ofstream(store + "/last_reserved_ip.0") << "192.168.99.99";
  std::ofstream(store + "/last_reserved_ip.1") << "not an address";
  const RunResult r = run("ADD", "c1");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  EXPECT_EQ(ips(r), (std::vector<std::string>{"10.252.0.2", "fd00:252::2"}));
  const RunResult r2 = run("ADD", "c2");
  ASSERT_EQ(r2.exitCode, 0) << r2.out;
  EXPECT_EQ(ips(r2), (std::vector<std::string>{"10.252.0.3", "fd00:252::3"}));
}

TEST_F(HostileStore, FullFilesystemGivesAClearErrorAndLeavesNoHalfAllocation) {
  DUALSTACK_REQUIRE_ROOT();
  Mount tiny(dataDir, "tmpfs", "size=64k,mode=0700");
  initStore();
  // Fill every block, then ADD.
  {
    std::ofstream fill(dataDir + "/filler", std::ios::binary);
    const std::string block(4096, 'x');
    for (int i = 0; i < 64 && fill; ++i) fill << block;
  }
  const RunResult r = run("ADD", "c1");
  EXPECT_NE(r.exitCode, 0);
  EXPECT_EQ(code(r), 5) << r.out;
  EXPECT_NE(msg(r).find("No space left on device"), std::string::npos) << msg(r);
  EXPECT_NE(msg(r).find(dataDir), std::string::npos)
      << "the message must name the path: " << msg(r);
  const StoreView v = readStore(store);
  EXPECT_TRUE(v.allocations.empty()) << "a failed ADD must not keep addresses";
  EXPECT_TRUE(v.tempFiles.empty());
  // Room again: the same ADD works and gets the first addresses.
  fs::remove(dataDir + "/filler");
  const RunResult ok = run("ADD", "c1");
  ASSERT_EQ(ok.exitCode, 0) << ok.out;
  EXPECT_EQ(ips(ok), (std::vector<std::string>{"10.252.0.2", "fd00:252::2"}));
  ASSERT_EQ(run("DEL", "c1").exitCode, 0);
}

TEST_F(HostileStore, ReadOnlyDataDirGivesAClearErrorAndChangesNothing) {
  DUALSTACK_REQUIRE_ROOT();
  ASSERT_EQ(run("ADD", "c0").exitCode, 0);
  const auto before = testing::snapshotTree(dataDir);
  Mount bind(dataDir);
  Mount::bindReadOnly(dataDir, dataDir);
  const RunResult r = run("ADD", "c1");
  EXPECT_NE(r.exitCode, 0);
  EXPECT_EQ(code(r), 5) << r.out;
  EXPECT_NE(msg(r).find("Read-only file system"), std::string::npos) << msg(r);
  const RunResult d = run("DEL", "c0");
  EXPECT_NE(d.exitCode, 0) << "a DEL that could not release must say so";
  EXPECT_NE(msg(d).find("Read-only file system"), std::string::npos) << msg(d);
  EXPECT_EQ(testing::snapshotTree(dataDir), before);
}

TEST_F(HostileStore, SymlinkedAllocationFileIsNeverWrittenThrough) {
  initStore();
  fs::create_symlink(victim, store + "/10.252.0.2");
  const RunResult r = run("ADD", "c1");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  EXPECT_EQ(ips(r).front(), "10.252.0.3") << "a planted name is a taken address";
  ASSERT_EQ(run("DEL", "c1").exitCode, 0);
  EXPECT_EQ(gc({}).exitCode, 0);
  EXPECT_FALSE(fs::exists(fs::symlink_status(store + "/10.252.0.2"))) << "GC removes the link";
  expectVictimUntouched();
}

TEST_F(HostileStore, SymlinkedLockIsRefused) {
  initStore();
  fs::remove(store + "/lock");
  fs::create_symlink(victim, store + "/lock");
  const RunResult r = run("ADD", "c1");
  EXPECT_NE(r.exitCode, 0);
  EXPECT_EQ(code(r), 5) << r.out;
  EXPECT_NE(msg(r).find(store + "/lock"), std::string::npos) << msg(r);
  EXPECT_NE(msg(r).find("symbolic link"), std::string::npos) << msg(r);
  EXPECT_TRUE(readStore(store).allocations.empty());
  expectVictimUntouched();
}

TEST_F(HostileStore, SymlinkedLastReservedIsNeverWrittenThrough) {
  initStore();
  fs::remove(store + "/last_reserved_ip.0");
  fs::create_symlink(victim, store + "/last_reserved_ip.0");
  const RunResult r = run("ADD", "c1");
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(msg(r).find("last_reserved_ip.0"), std::string::npos) << msg(r);
  EXPECT_TRUE(readStore(store).allocations.empty()) << "a failed ADD must not keep addresses";
  expectVictimUntouched();
}

TEST_F(HostileStore, SymlinkedNetworkOrIndexDirectoryIsRefused) {
  const std::string elsewhere = tmp.file("elsewhere");
  fs::create_directories(elsewhere);
  fs::create_directories(dataDir);
  fs::create_directory_symlink(elsewhere, store);
  const RunResult r = run("ADD", "c1");
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(msg(r).find(store), std::string::npos) << msg(r);
  EXPECT_TRUE(fs::is_empty(elsewhere)) << "nothing may be written through the symlink";

  fs::remove(store);
  initStore();
  fs::remove_all(store + "/.dualstack");
  fs::create_directory_symlink(elsewhere, store + "/.dualstack");
  const RunResult r2 = run("ADD", "c2");
  EXPECT_NE(r2.exitCode, 0);
  EXPECT_NE(msg(r2).find(".dualstack"), std::string::npos) << msg(r2);
  EXPECT_TRUE(fs::is_empty(elsewhere)) << "nothing may be written through the symlink";
  EXPECT_TRUE(readStore(store).allocations.empty());
}

TEST_F(HostileStore, DirectoriesAre0700AndFiles0600) {
  const std::string nested = tmp.file("a/b/data");
  json c = conf();
  c["ipam"]["dataDir"] = nested;
  ASSERT_EQ(run("ADD", "c1", c).exitCode, 0);
  for (const std::string& dir : {tmp.file("a"), tmp.file("a/b"), nested, nested + "/" + kNet,
                                 nested + "/" + kNet + "/.dualstack"}) {
    struct stat st {};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0) << dir;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << dir;
  }
  for (const auto& e : fs::recursive_directory_iterator(nested)) {
    if (!e.is_regular_file()) continue;
    struct stat st {};
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << e.path();
  }
}

// Something other than a regular file planted under one of the store's names: a FIFO (which a
// plain open would wait on forever, holding the network's lock), a directory, a device node.
// Every call that reads that name fails at once with an error naming the file and what it is,
// and changes nothing.
TEST_F(HostileStore, SpecialFilesUnderTheStoresNamesAreNamedAtOnce) {
  ASSERT_EQ(run("ADD", "c0").exitCode, 0);
  struct Kind {
    const char* name;
    std::function<void(const std::string&)> plant;
    const char* says;
  };
  std::vector<Kind> kinds = {
      {"FIFO", [](const std::string& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0); }, "is a FIFO"},
      {"directory", [](const std::string& p) { fs::create_directory(p); }, "is a directory"},
  };
  if (testing::isRoot()) {
    kinds.push_back({"device",
                     [](const std::string& p) {
                       ASSERT_EQ(::mknod(p.c_str(), S_IFCHR | 0600, ::makedev(1, 3)), 0);
                     },
                     "is a character device"});
  }
  // Each name with the calls that read it: ADD of a new attachment reads last_reserved_ip, a
  // repeated ADD and DEL read the attachment's index entry, every call the lock and the state.
  const std::vector<std::pair<std::string, std::vector<std::pair<const char*, const char*>>>>
      names = {
          {"lock", {{"ADD", "c1"}, {"DEL", "c0"}}},
          {".dualstack/state", {{"ADD", "c1"}, {"DEL", "c0"}}},
          {"last_reserved_ip.0", {{"ADD", "c1"}}},
          {".dualstack/c0@eth0", {{"ADD", "c0"}, {"DEL", "c0"}}},
      };
  for (const auto& kind : kinds) {
    for (const auto& [file, calls] : names) {
      SCOPED_TRACE(std::string(kind.name) + " as " + file);
      ASSERT_EQ(run("ADD", "c0").exitCode, 0);  // the index trusted again, whatever came before
      const std::string path = store + "/" + file;
      const std::string saved = testing::readFile(path);
      fs::remove(path);
      kind.plant(path);
      const auto before = testing::snapshotTree(dataDir);
      for (const auto& [command, id] : calls) {
        const auto start = std::chrono::steady_clock::now();
        const RunResult r = testing::runPlugin(
            testing::binPath("dualstack-ipam"), testing::cniEnv(command, id, "/var/run/netns/x"),
            conf().dump(), std::nullopt, std::chrono::seconds(30));
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10)) << command;
        EXPECT_EQ(code(r), 5) << command << " " << id << ": " << r.out;
        EXPECT_NE(msg(r).find(path), std::string::npos) << command << " " << id << ": " << msg(r);
        EXPECT_NE(msg(r).find(kind.says), std::string::npos)
            << command << " " << id << ": " << msg(r);
      }
      EXPECT_EQ(testing::snapshotTree(dataDir), before) << "a failed call must change nothing";
      fs::remove(path);
      if (file != "last_reserved_ip.0") std::ofstream(path, std::ios::binary) << saved;
    }
  }
  ASSERT_EQ(run("DEL", "c0").exitCode, 0);
  EXPECT_TRUE(readStore(store).allocations.empty());
}

TEST_F(HostileStore, AFifoInPlaceOfAnAllocationIsATakenAddressThatGcRemoves) {
  initStore();
  ASSERT_EQ(::mkfifo((store + "/10.252.0.2").c_str(), 0600), 0);
  const RunResult r = run("ADD", "c1");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  EXPECT_EQ(ips(r).front(), "10.252.0.3") << "a planted name is a taken address";
  ASSERT_EQ(run("DEL", "c1").exitCode, 0);
  EXPECT_EQ(gc({}).exitCode, 0);
  EXPECT_FALSE(fs::exists(fs::symlink_status(store + "/10.252.0.2"))) << "GC removes the FIFO";
}

}  // namespace
}  // namespace dualstack::hardening

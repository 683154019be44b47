#include "dualstack/ipam/disk_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "dualstack/cni/error.hpp"
#include "dualstack/ipam/allocator.hpp"
#include "support/support.hpp"

namespace dualstack::ipam {
namespace {

using dualstack::testing::readFile;

namespace fs = std::filesystem;

ip::Address A(const char* text) { return *ip::Address::parse(text); }


void write(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

unsigned mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class DiskStoreTest : public ::testing::Test {
 protected:
  dualstack::testing::TempDir tmp;
  std::string dataDir = tmp.file("data/networks");
  std::string dir = dataDir + "/net1";

  std::unique_ptr<DiskStore> open(DiskStore::Mode mode = DiskStore::Mode::Create) {
    auto s = DiskStore::open(dataDir, "net1", mode);
    if (s) s->lock();
    return s;
  }
  // One committed session reserving addr for (id, ifname).
  void add(const char* addr, const char* id, const char* ifname = "eth0") {
    auto s = open();
    ASSERT_TRUE(s->reserve(A(addr), {id, ifname}));
    s->commit();
  }
  std::vector<std::string> held(const char* id, const char* ifname = "eth0") {
    auto s = open();
    std::vector<std::string> out;
    for (const auto& a : s->addressesOf({id, ifname})) out.push_back(a.str());
    lastRebuilt = s->rebuiltIndex();
    s->commit();
    std::sort(out.begin(), out.end());
    return out;
  }
  bool lastRebuilt = false;
};

TEST_F(DiskStoreTest, HostLocalLayout) {
  {
    auto s = open();
    s->prepare({"c1", "eth0"});
    EXPECT_TRUE(s->reserve(A("10.244.1.2"), {"c1", "eth0"}));
    EXPECT_TRUE(s->reserve(A("fd00:10:244:1::2"), {"c1", "eth0"}));
    s->setLastReserved(0, A("10.244.1.2"));
    s->setLastReserved(1, A("fd00:10:244:1::2"));
    s->commit();
  }
  EXPECT_EQ(readFile(dir + "/10.244.1.2"), "c1\r\neth0");
  EXPECT_EQ(readFile(dir + "/fd00:10:244:1::2"), "c1\r\neth0");
  EXPECT_EQ(readFile(dir + "/last_reserved_ip.0"), "10.244.1.2");
  EXPECT_EQ(readFile(dir + "/last_reserved_ip.1"), "fd00:10:244:1::2");
  EXPECT_EQ(readFile(dir + "/.dualstack/c1@eth0"),
            "# dualstack-ipam index entry v1\ncontainerID c1\nifname eth0\n"
            "address 10.244.1.2\naddress fd00:10:244:1::2\n");
  EXPECT_EQ(readFile(dir + "/.dualstack/state").rfind("# dualstack-ipam index state v1\ndir ", 0), 0U);
  EXPECT_EQ(mode(dataDir), 0700U);
  EXPECT_EQ(mode(tmp.file("data")), 0700U);
  EXPECT_EQ(mode(dir), 0700U);
  EXPECT_EQ(mode(dir + "/.dualstack"), 0700U);
  EXPECT_EQ(mode(dir + "/10.244.1.2"), 0600U);
  EXPECT_EQ(mode(dir + "/lock"), 0600U);
  EXPECT_EQ(mode(dir + "/.dualstack/c1@eth0"), 0600U);
  // No temp file is ever left, under any name.
  EXPECT_EQ(names(dir),
            (std::vector<std::string>{".dualstack", "10.244.1.2", "fd00:10:244:1::2",
                                      "last_reserved_ip.0", "last_reserved_ip.1", "lock"}));
  EXPECT_EQ(names(dir + "/.dualstack"), (std::vector<std::string>{"c1@eth0", "state"}));

  auto s = open();
  EXPECT_EQ(s->lastReserved(1)->str(), "fd00:10:244:1::2");
  EXPECT_FALSE(s->lastReserved(2));
  EXPECT_EQ(s->ownerOf(A("10.244.1.2")), (Owner{"c1", "eth0"}));
  EXPECT_EQ(s->addressesOf({"c1", "eth0"}).size(), 2U);
  EXPECT_FALSE(s->rebuiltIndex());
}

TEST_F(DiskStoreTest, NamedTempFallbackLeavesNothingBehind) {
  {
    auto s = DiskStore::open(dataDir, "net1", DiskStore::Mode::Create);
    s->useNamedTemps();
    s->prepare({"c1", "eth0"});
    s->lock();
    EXPECT_TRUE(s->reserve(A("10.0.0.2"), {"c1", "eth0"}));
    EXPECT_TRUE(s->reserve(A("fd00::2"), {"c1", "eth0"}));
    EXPECT_FALSE(s->reserve(A("10.0.0.2"), {"c2", "eth0"}));
    s->commit();
  }
  EXPECT_EQ(readFile(dir + "/10.0.0.2"), "c1\r\neth0");
  EXPECT_EQ(readFile(dir + "/fd00::2"), "c1\r\neth0");
  EXPECT_EQ(names(dir + "/.dualstack"), (std::vector<std::string>{"c1@eth0", "state"}));
  {
    // A session that fails before commit removes its temp file too.
    auto s = DiskStore::open(dataDir, "net1", DiskStore::Mode::Create);
    s->useNamedTemps();
    s->prepare({"c3", "eth0"});
    EXPECT_EQ(names(dir + "/.dualstack").size(), 3U);
  }
  EXPECT_EQ(names(dir + "/.dualstack"), (std::vector<std::string>{"c1@eth0", "state"}));
}

TEST_F(DiskStoreTest, ReserveNeverOverwritesAnExistingFile) {
  add("10.0.0.2", "c1");
  write(dir + "/10.0.0.3", "hostlocal\r\neth0");
  auto s = open();
  EXPECT_FALSE(s->reserve(A("10.0.0.2"), {"c2", "eth0"}));
  EXPECT_FALSE(s->reserve(A("10.0.0.3"), {"c2", "eth0"}));
  EXPECT_TRUE(s->isAllocated(A("10.0.0.3")));
  s->commit();
  EXPECT_EQ(readFile(dir + "/10.0.0.2"), "c1\r\neth0");
  EXPECT_EQ(readFile(dir + "/10.0.0.3"), "hostlocal\r\neth0");
}

TEST_F(DiskStoreTest, TheIndexIsTrustedWhileTheDirectoryIsUnchanged) {
  add("10.0.0.2", "c1");
  EXPECT_EQ(held("c1"), (std::vector<std::string>{"10.0.0.2"}));
  EXPECT_FALSE(lastRebuilt);
  EXPECT_EQ(held("c1"), (std::vector<std::string>{"10.0.0.2"}));
  EXPECT_FALSE(lastRebuilt);
}

TEST_F(DiskStoreTest, RebuildsWhenAFileAppearsBehindItsBack) {
  add("10.0.0.2", "c1");
  write(dir + "/10.0.0.9", "c1\r\neth0");  // e.g. host-local
  EXPECT_EQ(held("c1"), (std::vector<std::string>{"10.0.0.2", "10.0.0.9"}));
  EXPECT_TRUE(lastRebuilt);
  EXPECT_EQ(held("c1"), (std::vector<std::string>{"10.0.0.2", "10.0.0.9"}));
  EXPECT_FALSE(lastRebuilt);  // recorded again
}

TEST_F(DiskStoreTest, RebuildsWhenAFileDisappearsBehindItsBack) {
  add("10.0.0.2", "c1");
  add("fd00::2", "c1");
  fs::remove(dir + "/10.0.0.2");
  EXPECT_EQ(held("c1"), (std::vector<std::string>{"fd00::2"}));
  EXPECT_TRUE(lastRebuilt);
  EXPECT_EQ(readFile(dir + "/.dualstack/c1@eth0"),
            "# dualstack-ipam index entry v1\ncontainerID c1\nifname eth0\naddress fd00::2\n");
}

TEST_F(DiskStoreTest, RebuildsWhenAnEntryDisagreesWithTheFilesItNames) {
  add("10.0.0.2", "c1");
  add("10.0.0.3", "c2");
  // Damage an entry without touching the network directory itself.
  write(dir + "/.dualstack/c1@eth0",
        "# dualstack-ipam index entry v1\ncontainerID c1\nifname eth0\naddress 10.0.0.3\n");
  EXPECT_EQ(held("c1"), (std::vector<std::string>{"10.0.0.2"}));
  EXPECT_TRUE(lastRebuilt);
  write(dir + "/.dualstack/c2@eth0", "# dualstack-ipam index entry v1\ncontainerID c2\nifn");
  EXPECT_EQ(held("c2"), (std::vector<std::string>{"10.0.0.3"}));
  EXPECT_TRUE(lastRebuilt);
}

TEST_F(DiskStoreTest, RebuildDropsStaleEntries) {
  add("10.0.0.2", "c1");
  write(dir + "/.dualstack/gone@eth0",
        "# dualstack-ipam index entry v1\ncontainerID gone\nifname eth0\naddress 10.0.0.7\n");
  write(dir + "/10.0.0.4", "c4\r\neth0");
  EXPECT_EQ(held("c4"), (std::vector<std::string>{"10.0.0.4"}));
  EXPECT_EQ(names(dir + "/.dualstack"), (std::vector<std::string>{"c1@eth0", "c4@eth0", "state"}));
}

TEST_F(DiskStoreTest, ASessionThatDiesBeforeCommitIsRepairedByTheNextOne) {
  {
    auto s = open();
    ASSERT_TRUE(s->reserve(A("10.0.0.2"), {"c1", "eth0"}));
    // destroyed without commit: the file exists, the index and state were not written
  }
  EXPECT_EQ(held("c1"), (std::vector<std::string>{"10.0.0.2"}));
  EXPECT_TRUE(lastRebuilt);
}

TEST_F(DiskStoreTest, LegacyIdOnlyFilesAreHonoured) {
  add("10.0.0.2", "other");
  write(dir + "/10.0.0.5", "c1");
  write(dir + "/10.0.0.6", "  c1\n");  // host-local trims whitespace
  EXPECT_EQ(held("c1", "eth0"), (std::vector<std::string>{"10.0.0.5", "10.0.0.6"}));
  EXPECT_EQ(held("c1", "eth7"), (std::vector<std::string>{"10.0.0.5", "10.0.0.6"}));
  {
    auto s = open();
    EXPECT_EQ(s->ownerOf(A("10.0.0.5")), (Owner{"c1", ""}));
    EXPECT_EQ(release({"c1", "eth0"}, *s).size(), 2U);
    s->commit();
  }
  EXPECT_FALSE(fs::exists(dir + "/10.0.0.5"));
  EXPECT_TRUE(fs::exists(dir + "/10.0.0.2"));
  EXPECT_TRUE(held("c1").empty());
}

TEST_F(DiskStoreTest, ReleaseAndRepeatedRelease) {
  add("10.0.0.2", "c1");
  add("fd00::2", "c1");
  add("10.0.0.3", "c1", "eth1");
  for (int i = 0; i < 2; ++i) {
    auto s = open();
    release({"c1", "eth0"}, *s);
    s->commit();
  }
  EXPECT_EQ(names(dir), (std::vector<std::string>{".dualstack", "10.0.0.3", "lock"}));
  EXPECT_EQ(names(dir + "/.dualstack"), (std::vector<std::string>{"c1@eth1", "state"}));
  EXPECT_EQ(held("c1", "eth1"), (std::vector<std::string>{"10.0.0.3"}));
  EXPECT_FALSE(lastRebuilt);
}

TEST_F(DiskStoreTest, VeryLongContainerIdsGetHashedEntryNames) {
  const std::string id(300, 'a');
  const std::string id2 = std::string(299, 'a') + "b";
  {
    auto s = open();
    ASSERT_TRUE(s->reserve(A("10.0.0.2"), {id, "eth0"}));
    ASSERT_TRUE(s->reserve(A("10.0.0.3"), {id2, "eth0"}));
    s->commit();
  }
  const auto idx = names(dir + "/.dualstack");
  ASSERT_EQ(idx.size(), 3U);
  EXPECT_EQ(idx[0], "state");
  EXPECT_EQ(idx[1][0], '~');
  EXPECT_EQ(idx[2][0], '~');
  EXPECT_EQ(held(id.c_str()), (std::vector<std::string>{"10.0.0.2"}));
  EXPECT_EQ(held(id2.c_str()), (std::vector<std::string>{"10.0.0.3"}));
  EXPECT_FALSE(lastRebuilt);
  {
    auto s = open();
    release({id, "eth0"}, *s);
    s->commit();
  }
  EXPECT_EQ(names(dir + "/.dualstack").size(), 2U);
  EXPECT_EQ(held(id2.c_str()), (std::vector<std::string>{"10.0.0.3"}));
  EXPECT_FALSE(lastRebuilt);
}

TEST_F(DiskStoreTest, ListAndGcRewriteTheWholeIndex) {
  add("10.0.0.2", "keep");
  add("10.0.0.3", "drop");
  write(dir + "/10.0.0.4", "");  // names nobody
  write(dir + "/not-an-ip", "drop\r\neth0");
  write(dir + "/010.0.0.5", "drop\r\neth0");  // not canonical: host-local never looks at it
  auto s = open();
  auto r = collectGarbage({{"keep", "eth0"}}, *s);
  EXPECT_EQ(r.released.size(), 2U);
  s->commit();
  EXPECT_EQ(names(dir),
            (std::vector<std::string>{".dualstack", "010.0.0.5", "10.0.0.2", "lock", "not-an-ip"}));
  EXPECT_EQ(names(dir + "/.dualstack"), (std::vector<std::string>{"keep@eth0", "state"}));
}

TEST_F(DiskStoreTest, StaleTempFilesAreRemovedByGcOnly) {
  add("10.0.0.2", "c1");
  write(dir + "/.dualstack/.tmp-1-0", "c9\r\neth0");
  write(dir + "/.dualstack/.tmp-1-1", "c9\r\neth0");
  const timespec old[2] = {{0, UTIME_OMIT}, {std::time(nullptr) - 3600, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir + "/.dualstack/.tmp-1-0").c_str(), old, 0), 0);
  auto s = open();
  EXPECT_EQ(s->removeStaleTemps(std::chrono::minutes(10)), 1U);
  s->commit();
  EXPECT_EQ(names(dir + "/.dualstack"), (std::vector<std::string>{".tmp-1-1", "c1@eth0", "state"}));
}

TEST_F(DiskStoreTest, ExistingModeCreatesNothing) {
  EXPECT_EQ(DiskStore::open(dataDir, "net1", DiskStore::Mode::Existing), nullptr);
  EXPECT_EQ(DiskStore::open(dataDir, "net1", DiskStore::Mode::ReadOnly), nullptr);
  EXPECT_FALSE(fs::exists(tmp.file("data")));
}

TEST_F(DiskStoreTest, ReadOnlyModeWritesNothing) {
  add("10.0.0.2", "c1");
  fs::remove(dir + "/.dualstack/state");
  const auto before = dualstack::testing::snapshotTree(dir);
  auto s = open(DiskStore::Mode::ReadOnly);
  EXPECT_TRUE(s->isAllocated(A("10.0.0.2")));
  EXPECT_FALSE(s->isAllocated(A("10.0.0.3")));
  s->commit();
  EXPECT_EQ(dualstack::testing::snapshotTree(dir), before);
}

TEST_F(DiskStoreTest, NetworkDirectoryMustNotBeASymlink) {
  fs::create_directories(dataDir);
  fs::create_directories(tmp.file("elsewhere"));
  fs::create_directory_symlink(tmp.file("elsewhere"), dir);
  try {
    DiskStore::open(dataDir, "net1", DiskStore::Mode::Create);
    ADD_FAILURE();
  } catch (const cni::Error& e) {
    EXPECT_EQ(e.code(), cni::Code::IoFailure);
    EXPECT_NE(e.msg().find("is not a directory"), std::string::npos) << e.msg();
  }
}

// Whether the kernel lists a process waiting for an flock on the file with inode `ino`
// (/proc/locks shows waiters as "N: -> FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> ...").
bool flockWaiterOn(ino_t ino) {
  std::ifstream locks("/proc/locks");
  const std::string inode = ":" + std::to_string(ino) + " ";
  for (std::string line; std::getline(locks, line);) {
    if (line.find("-> FLOCK") != std::string::npos && line.find(inode) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST_F(DiskStoreTest, TheLockExcludesASecondSession) {
  auto first = open();
  struct stat lockFile {};
  ASSERT_EQ(::stat((dir + "/lock").c_str(), &lockFile), 0);
  std::atomic<bool> got{false};
  std::jthread t([&] {
    auto second = open();
    got = true;
    second->commit();
  });
  // Wait (bounded) until the second session is queued on the lock in the kernel.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!flockWaiterOn(lockFile.st_ino) && !got && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_FALSE(got) << "the second session took the lock the first one holds";
  EXPECT_TRUE(flockWaiterOn(lockFile.st_ino)) << "the second session never waited for the lock";
  first->commit();
  t.join();
  EXPECT_TRUE(got);
}

TEST_F(DiskStoreTest, IndexFilesCanNeverMatchHostLocalsReleaseById) {
  add("10.0.0.2", "c1");
  // host-local deletes files whose trimmed content equals "<id>\r\n<ifname>" or "<id>"; a
  // container ID cannot start with '#'.
  for (const auto& n : names(dir + "/.dualstack")) {
    EXPECT_EQ(readFile(dir + "/.dualstack/" + n)[0], '#') << n;
  }
}

}  // namespace
}  // namespace dualstack::ipam

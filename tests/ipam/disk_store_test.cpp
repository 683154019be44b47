#include "dualstack/ipam/disk_store.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "dualstack/cni/error.hpp"
#include "dualstack/ipam/allocator.hpp"
#include "support/support.hpp"

#include <cstring>
#include <ctime>

namespace dualstack::ipam {
namespace {

using dualstack::testing::readFile;

namespace fs = std::filesystem;

ip::Address A(const char* text) { return *ip::Address::parse(text); }

std::vector<std::string> strs(const std::vector<ip::Address>& addrs) {
  std::vector<std::string> out;
  for (const auto& a : addrs) out.push_back(a.str());
  std::sort(out.begin(), out.end());
  return out;
}

cni::Error errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const cni::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return cni::Error(cni::Code::Internal, "<no error>");
}

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
  EXPECT_EQ(readFile(dir + "/.dualstack/state").rfind("# dualstack-ipam index state v2\ndir ", 0),
            0U);
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

// An ADD writes an attachment's index entry in allocation order (IPv4 first here); a rebuild finds
// the addresses in directory order. A GC that releases nothing must still write the same bytes.
TEST_F(DiskStoreTest, AGcThatReleasesNothingRewritesNothing) {
  std::vector<cni::Attachment> all;
  for (int i = 2; i < 18; ++i) {
    const std::string n = std::to_string(i);
    all.push_back({"c" + n, "eth0"});
    auto s = open();
    ASSERT_TRUE(s->reserve(A(("10.244.1." + n).c_str()), all.back()));
    ASSERT_TRUE(s->reserve(A(("fd00:10:244:1::" + n).c_str()), all.back()));
    s->commit();
  }
  const auto before = dualstack::testing::snapshotTree(dir);
  auto s = open();
  const auto r = collectGarbage(all, *s);
  EXPECT_TRUE(r.released.empty());
  s->commit();
  EXPECT_EQ(dualstack::testing::snapshotTree(dir), before);
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

// last_reserved_ip.N is only a hint for the round robin: whatever it holds, the next search
// starts inside the range set, never at an address outside it.
TEST_F(DiskStoreTest, LastReservedHoldingAnythingOnlyMovesTheSearchWithinTheRange) {
  const RangeSet v4{0,
                    {makeRange(*ip::Prefix::parse("10.244.1.0/24"), std::nullopt, std::nullopt,
                               std::nullopt, "test")}};
  add("10.244.1.2", "c1");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "10.244.1.3"},
      {"10.244.1.254", "10.244.1.3"},  // the range's end: wraps to its start
      {"10.244.1.255", "10.244.1.3"},  // broadcast, not in the range
      {"10.244.1.0", "10.244.1.3"},    // the network address
      {"255.255.255.255", "10.244.1.3"},
      {"0.0.0.0", "10.244.1.3"},
      {"10.244.1.100", "10.244.1.101"},
      {" 10.244.1.100\n", "10.244.1.101"},
      {"10.244.1.100 10.244.1.7", "10.244.1.3"},
      {"10.244.1.300", "10.244.1.3"},
      {"4294967295", "10.244.1.3"},
      {"::ffff:10.244.1.100", "10.244.1.3"},  // another family
      {"fd00::1", "10.244.1.3"},
      {std::string(70000, '9'), "10.244.1.3"},
      {std::string("10.244.1.100\0junk", 17), "10.244.1.3"},
  };
  for (const auto& [text, next] : cases) {
    write(dir + "/last_reserved_ip.0", text);
    auto s = open();
    const auto found = findFree(v4, *s);
    s->commit();
    ASSERT_TRUE(found) << text.substr(0, 40);
    EXPECT_EQ(found->str(), next) << text.substr(0, 40);
  }
}

// ---- what is planted under the store's names

// Each of the store's own files replaced by something else: the session that reads it fails
// at once with an error naming the file and what it is, and leaves the lock free.
TEST_F(DiskStoreTest, PlantedFilesAreNamedNotOpened) {
  add("10.0.0.2", "c1");
  struct Kind {
    const char* name;
    std::function<void(const std::string&)> plant;
    const char* says;
  };
  std::vector<Kind> kinds = {
      {"FIFO", [](const std::string& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0); }, "a FIFO"},
      {"directory", [](const std::string& p) { fs::create_directory(p); }, "a directory"},
      {"symlink", [&](const std::string& p) { fs::create_symlink(tmp.file("elsewhere"), p); },
       "a symbolic link"},
  };
  if (dualstack::testing::isRoot()) {
    kinds.push_back({"device",
                     [](const std::string& p) {
                       ASSERT_EQ(::mknod(p.c_str(), S_IFCHR | 0600, ::makedev(1, 3)), 0);  // null
                     },
                     "a character device"});
  }
  struct Target {
    std::string file;
    std::function<void(DiskStore&)> use;  // after lock()
  };
  const std::vector<Target> targets = {
      {"lock", [](DiskStore&) {}},
      {".dualstack/state", [](DiskStore&) {}},
      {"last_reserved_ip.0", [](DiskStore& s) { s.lastReserved(0); }},
      {".dualstack/c1@eth0",
       [](DiskStore& s) {
         s.addressesOf({"c1", "eth0"});
       }},
  };
  for (const auto& kind : kinds) {
    for (const auto& target : targets) {
      SCOPED_TRACE(std::string(kind.name) + " as " + target.file);
      const std::string path = dir + "/" + target.file;
      const std::string saved = readFile(path);
      fs::remove(path);
      kind.plant(path);
      const auto start = std::chrono::steady_clock::now();
      const cni::Error e = errorOf([&] {
        auto s = open();
        target.use(*s);
        s->commit();
      });
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
      EXPECT_EQ(e.code(), cni::Code::IoFailure);
      EXPECT_NE(e.msg().find(path), std::string::npos) << e.msg();
      EXPECT_NE(e.msg().find(kind.says), std::string::npos) << e.msg();
      fs::remove(path);
      if (target.file != "last_reserved_ip.0") write(path, saved);
      // The failed session let go of the lock.
      auto next = DiskStore::open(dataDir, "net1", DiskStore::Mode::Existing);
      next->lock(std::chrono::milliseconds(0));
      next->commit();
    }
  }
  EXPECT_EQ(held("c1"), (std::vector<std::string>{"10.0.0.2"}));
}

TEST_F(DiskStoreTest, AFifoInPlaceOfAnAllocationIsATakenAddressNeverOpened) {
  add("10.0.0.2", "c1");
  ASSERT_EQ(::mkfifo((dir + "/10.0.0.3").c_str(), 0600), 0);
  auto s = open();
  EXPECT_TRUE(s->isAllocated(A("10.0.0.3")));
  EXPECT_EQ(s->ownerOf(A("10.0.0.3")), std::nullopt);
  EXPECT_FALSE(s->reserve(A("10.0.0.3"), {"c2", "eth0"}));
  EXPECT_EQ(s->list().size(), 2u);
  s->commit();
}

// ---- the lock

TEST_F(DiskStoreTest, ALockHeldByAnotherProcessIsTryAgainLaterNamingIt) {
  add("10.0.0.2", "c1");
  const dualstack::testing::LockHolder holder(dir + "/lock");
  auto s = DiskStore::open(dataDir, "net1", DiskStore::Mode::Existing);
  const auto start = std::chrono::steady_clock::now();
  const cni::Error e = errorOf([&] { s->lock(std::chrono::milliseconds(300)); });
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  EXPECT_EQ(e.code(), cni::Code::TryAgainLater);
  EXPECT_NE(e.msg().find("the store lock " + dir + "/lock is held by PID " +
                         std::to_string(holder.pid()) + " (test_ipam)"),
            std::string::npos)
      << e.msg();
  EXPECT_NE(e.msg().find("not released within 300 ms"), std::string::npos) << e.msg();
}

// ---- the index after crashes and foreign writers

TEST_F(DiskStoreTest, ASessionChangingTheDirectoryMarksTheStateUntilItCommits) {
  add("10.0.0.2", "c1");
  const std::string stamp = readFile(dir + "/.dualstack/state");
  EXPECT_NE(stamp.find("\ncomplete "), std::string::npos) << stamp;
  {
    auto s = open();
    ASSERT_TRUE(s->reserve(A("10.0.0.3"), {"c2", "eth0"}));
    EXPECT_EQ(readFile(dir + "/.dualstack/state"), "# dualstack-ipam index state v2\nchanging\n");
    // destroyed without commit, as by a kill
  }
  EXPECT_EQ(held("c2"), (std::vector<std::string>{"10.0.0.3"}));
  EXPECT_TRUE(lastRebuilt);
}

TEST_F(DiskStoreTest, AStateOfAnotherBootIsNotTrusted) {
  add("10.0.0.2", "c1");
  add("fd00::2", "c1");
  // After a power loss the entry may have lost a write the state kept.
  write(dir + "/.dualstack/c1@eth0",
        "# dualstack-ipam index entry v1\ncontainerID c1\nifname eth0\naddress 10.0.0.2\n");
  std::string state = readFile(dir + "/.dualstack/state");
  const auto boot = state.find("\nboot ");
  ASSERT_NE(boot, std::string::npos) << state;
  state.replace(boot + 6, 36, "00000000-0000-0000-0000-000000000000");
  write(dir + "/.dualstack/state", state);
  EXPECT_EQ(held("c1"), (std::vector<std::string>{"10.0.0.2", "fd00::2"}));
  EXPECT_TRUE(lastRebuilt);
}

// Runs `scenario` in a child process with a mount namespace of its own, in which `dir` is an
// ext4 file system with 128-byte inodes: its timestamps have a resolution of one second, so
// changes within a second share their timestamps, as changes within a clock tick do on kernels
// before 6.13. Returns what the scenario reports; empty when it passed.
std::string onCoarseTimestamps(const std::string& work,
                               const std::function<std::string(const std::string&)>& scenario) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::string out;
    const std::string img = work + "/fs.img", mnt = work + "/mnt";
    fs::create_directories(mnt);
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      out = std::string("private mount namespace: ") + std::strerror(errno);
    } else if (dualstack::testing::shell("truncate -s 16M " + img + " && mkfs.ext4 -q -F -I 128 " +
                                         img + " 2>/dev/null && mount -o loop " + img + " " +
                                         mnt) != 0) {
      out = "cannot mount an ext4 image with 128-byte inodes on a loop device at " + mnt;
    } else {
      try {
        out = scenario(mnt);
      } catch (const std::exception& e) {
        out = std::string("exception: ") + e.what();
      }
      ::umount2(mnt.c_str(), MNT_DETACH);
    }
    if (::write(report[1], out.data(), out.size()) < 0) _exit(2);
    _exit(0);
  }
  ::close(report[1]);
  std::string out;
  char buf[4096];
  pollfd p{report[0], POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && ::poll(&p, 1, 1000) >= 0) {
    if (p.revents == 0) continue;
    const ssize_t n = ::read(report[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(report[0]);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out += " (the scenario's process failed)";
  return out;
}

// Waits for the start of the next second, so that a short scenario stays within one.
std::time_t atTheStartOfASecond() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto next = std::chrono::ceil<std::chrono::seconds>(now) + std::chrono::milliseconds(20);
  std::this_thread::sleep_for(next - now);
  return std::time(nullptr);
}

// host-local's own way of allocating, as its disk backend does it.
void hostLocalAllocates(const std::string& netDir, const std::string& addr, const std::string& id) {
  const int lock = ::open((netDir + "/lock").c_str(), O_RDONLY | O_CLOEXEC);
  ::flock(lock, LOCK_EX);
  const int fd = ::open((netDir + "/" + addr).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  const std::string content = id + "\r\neth0";
  if (fd >= 0 && ::write(fd, content.data(), content.size()) > 0) ::close(fd);
  write(netDir + "/last_reserved_ip.0", addr);
  ::close(lock);
}

// On a file system with one-second timestamps: `ours` reserves 10.0.0.2 and commits at the start
// of a second, then `change` alters the store behind that session's back. When all of it stayed
// within that second (else a fresh store tries again, five times at most), a DEL of `deleted` must
// release exactly `expected`, and `verify` (if any) must hold. Returns what went wrong; "" if
// nothing did.
std::string delWithinTheTimestampOfOurLastChange(
    const std::string& work, const cni::Attachment& ours,
    const std::function<std::string(const std::string& data)>& change,
    const cni::Attachment& deleted, const std::vector<std::string>& expected,
    const std::function<std::string(const std::string& data)>& verify = nullptr) {
  return onCoarseTimestamps(work, [&](const std::string& mnt) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      const std::string data = mnt + "/data" + std::to_string(attempt);
      const std::time_t second = atTheStartOfASecond();
      {
        auto s = DiskStore::open(data, "net", DiskStore::Mode::Create);
        s->lock();
        if (!s->reserve(A("10.0.0.2"), ours)) return std::string("reserve failed");
        s->commit();
      }
      if (std::string failed = change(data); !failed.empty()) return failed;
      struct stat st {};
      ::stat((data + "/net").c_str(), &st);
      if (std::time(nullptr) != second || st.st_ctime != second) continue;  // crossed a second
      auto s = DiskStore::open(data, "net", DiskStore::Mode::Existing);
      s->lock();
      const auto released = strs(release(deleted, *s));
      s->commit();
      if (released != expected) {
        std::string text = "DEL of " + deleted.containerId + " released";
        for (const auto& r : released) text += " " + r;
        text += " instead of";
        for (const auto& e : expected) text += " " + e;
        return text;
      }
      return verify ? verify(data) : std::string();
    }
    return std::string("every attempt crossed a second");
  });
}

// host-local allocates for an attachment within the timestamp of our last change: the directory
// looks unchanged, yet DEL of that attachment must release its address.
TEST_F(DiskStoreTest, DelFindsWhatHostLocalAddedWithinTheTimestampOfOurLastChange) {
  DUALSTACK_REQUIRE_ROOT();
  const std::string failure = delWithinTheTimestampOfOurLastChange(
      tmp.path(), {"ours", "eth0"},
      [](const std::string& data) {
        hostLocalAllocates(data + "/net", "10.0.0.3", "theirs");
        return std::string();
      },
      {"theirs", "eth0"}, {"10.0.0.3"},
      [](const std::string& data) {
        return fs::exists(data + "/net/10.0.0.3") ? std::string("10.0.0.3 is still allocated")
                                                  : std::string();
      });
  EXPECT_EQ(failure, "");
}

// A session killed after it created a per-IP file but before it wrote the index, within the
// timestamp of the previous change: the next DEL releases that file too.
TEST_F(DiskStoreTest, DelFindsWhatAKilledSessionAddedWithinTheTimestampOfOurLastChange) {
  DUALSTACK_REQUIRE_ROOT();
  const std::string failure = delWithinTheTimestampOfOurLastChange(
      tmp.path(), {"c1", "eth0"},
      [](const std::string& data) {
        auto s = DiskStore::open(data, "net", DiskStore::Mode::Existing);
        s->lock();
        // destroyed without commit: killed before the index and state were written
        return s->reserve(A("fd00::2"), {"c1", "eth0"}) ? std::string()
                                                        : std::string("reserve failed");
      },
      {"c1", "eth0"}, {"10.0.0.2", "fd00::2"});
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace dualstack::ipam

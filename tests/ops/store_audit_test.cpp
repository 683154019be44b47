// The audit behind `dualstack-ipam verify`, in process: one planted problem of each kind, each
// reported once and naming its file, and nothing changed on disk.
#include "dualstack/ops/store_audit.hpp"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "dualstack/cni/error.hpp"
#include "support/support.hpp"

namespace dualstack::ops {
namespace {

using ipam::DiskStore;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

ip::Address A(const char* text) { return *ip::Address::parse(text); }

void write(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

constexpr std::chrono::seconds kTempAge{600};

class StoreAuditTest : public ::testing::Test {
 protected:
  dualstack::testing::TempDir tmp;
  std::string dataDir = tmp.file("networks");
  std::string dir = dataDir + "/net1";
  std::string index = dir + "/.dualstack";

  void SetUp() override {
    auto s = DiskStore::open(dataDir, "net1", DiskStore::Mode::Create);
    s->lock();
    ASSERT_TRUE(s->reserve(A("10.0.0.2"), {"c1", "eth0"}));
    ASSERT_TRUE(s->reserve(A("fd00::2"), {"c1", "eth0"}));
    ASSERT_TRUE(s->reserve(A("10.0.0.3"), {std::string(300, 'a'), "eth0"}));  // hashed entry
    s->setLastReserved(0, A("10.0.0.3"));
    s->commit();
  }

  std::vector<std::string> audit() {
    auto s = DiskStore::open(dataDir, "net1", DiskStore::Mode::ReadOnly);
    s->lock();
    auto problems = auditStore(*s, kTempAge);
    s->commit();
    return problems;
  }
};

TEST_F(StoreAuditTest, AHealthyStoreHasNoProblems) { EXPECT_THAT(audit(), IsEmpty()); }

TEST_F(StoreAuditTest, EachProblemOfTheNetworkDirectoryIsNamed) {
  write(dir + "/notes.txt", "x");
  ASSERT_EQ(::mkdir((dir + "/10.0.0.9").c_str(), 0700), 0);
  write(dir + "/fd00:0::7", "c7\r\neth0");
  write(dir + "/10.0.0.8", "  \n");
  write(dir + "/last_reserved_ip.1", "not an address");
  const auto before = dualstack::testing::snapshotTree(dir);
  EXPECT_THAT(
      audit(),
      UnorderedElementsAre(
          dir + "/notes.txt: not an allocation (stray file)",
          dir + "/10.0.0.9: not an allocation (stray directory)",
          dir + "/fd00:0::7: not an allocation: the address is not in canonical form (fd00::7), "
                "so no plugin ever looks it up",
          dir + "/10.0.0.8: names no owner (the address is held by nobody; gc releases it)",
          dir + "/last_reserved_ip.1: does not hold an address"));
  EXPECT_EQ(dualstack::testing::snapshotTree(dir), before);
}

TEST_F(StoreAuditTest, EachDisagreementOfTheIndexIsNamed) {
  write(dir + "/10.0.0.4", "c4\r\neth0");  // not indexed
  write(index + "/c1@eth0",
        "# dualstack-ipam index entry v1\ncontainerID c1\nifname eth0\naddress 10.0.0.2\n"
        "address 10.0.0.3\naddress 10.0.0.5\n");
  write(index + "/c9@eth0", "garbage");
  ASSERT_EQ(::mkdir((index + "/sub").c_str(), 0700), 0);
  write(index + "/.tmp-1-0", "c1\r\neth0");
  const timeval old[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
  ASSERT_EQ(::utimes((index + "/.tmp-1-0").c_str(), old), 0);
  write(index + "/.tmp-2-0", "c2\r\neth0");  // a running ADD's
  const std::string long300 = std::string(300, 'a') + "/eth0";
  EXPECT_THAT(
      audit(),
      UnorderedElementsAre(
          index + "/c1@eth0: lists 10.0.0.3 for c1/eth0, but the address belongs to " + long300,
          index + "/c1@eth0: lists 10.0.0.5 for c1/eth0, but " + dir +
              "/10.0.0.5 does not hold an allocation",
          index + "/c9@eth0: not a valid index entry",
          index + "/sub: not an index entry (stray directory)",
          index + "/.tmp-1-0: temp file of an ADD that did not finish (gc removes it)",
          dir + "/fd00::2: held by c1/eth0 but missing from the index (a GC rewrites the index)",
          dir + "/10.0.0.4: held by c4/eth0 but missing from the index (a GC rewrites the index)"));
}

TEST_F(StoreAuditTest, AnEntryUnderAnotherAttachmentsNameIsInvalid) {
  ASSERT_EQ(::rename((index + "/c1@eth0").c_str(), (index + "/c2@eth0").c_str()), 0);
  const auto problems = audit();
  EXPECT_THAT(problems, ::testing::Contains(index + "/c2@eth0: not a valid index entry"));
}

TEST_F(StoreAuditTest, AStoreWithoutAnIndexIsCheckedForStrayFilesOnly) {
  std::filesystem::remove_all(index);
  write(dir + "/notes.txt", "x");
  EXPECT_THAT(audit(), ElementsAre(dir + "/notes.txt: not an allocation (stray file)"));
}

TEST_F(StoreAuditTest, AnIndexThatIsNoDirectoryIsNamed) {
  std::filesystem::remove_all(index);
  write(index, "x");
  EXPECT_THAT(audit(), ElementsAre(index + ": is a file, expected the index directory"));
}

TEST_F(StoreAuditTest, NeedsTheLock) {
  auto s = DiskStore::open(dataDir, "net1", DiskStore::Mode::ReadOnly);
  try {
    auditStore(*s, kTempAge);
    ADD_FAILURE() << "no error";
  } catch (const cni::Error& e) {
    EXPECT_EQ(e.code(), cni::Code::Internal);
  }
}

}  // namespace
}  // namespace dualstack::ops

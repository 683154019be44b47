// The shared table's cluster sets through libnftables, inside a throwaway "node" namespace that
// the test thread enters around every call (the machine's own ruleset is never read or written),
// checked with the nft command line.
#include "dualstack/nft/table.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dualstack/netns/netns.hpp"
#include "dualstack/nft/nftables.hpp"
#include "dualstack/sys/error.hpp"
#include "support/support.hpp"

namespace dualstack::nft {
namespace {

using dualstack::testing::TestNetns;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

ip::Prefix pfx(const char* text) {
  auto p = ip::Prefix::parse(text);
  if (!p) throw std::invalid_argument(std::string("bad prefix in test: ") + text);
  return *p;
}

std::vector<std::string> texts(const std::vector<ip::Prefix>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.str());
  return out;
}

TEST(NftPrefixes, NormalizedDropsNestedAndDuplicatePrefixesAndClearsHostBits) {
  EXPECT_THAT(texts(normalized({pfx("10.244.2.0/24"), pfx("10.244.0.0/16"), pfx("10.96.0.7/12"),
                                pfx("10.244.0.0/16"), pfx("fd00::1/64"), pfx("fd00::/56")})),
              ElementsAre("10.96.0.0/12", "10.244.0.0/16", "fd00::/56"));
  EXPECT_THAT(normalized({}), IsEmpty());
  EXPECT_EQ(elementList({pfx("10.0.0.0/8"), pfx("fd00::/8")}), "10.0.0.0/8, fd00::/8");
}

TEST(NftTable, NamesAndLockPath) {
  EXPECT_EQ(tableName("dualstack"), "dualstack_dualstack");
  EXPECT_EQ(qualifiedTable("dualstack"), "inet dualstack_dualstack");
  EXPECT_EQ(lockPath("dualstack"), "/run/dualstack-cni/masq-dualstack.lock");
  EXPECT_THROW(checkNetwork("../x", "agent"), sys::Error);
  EXPECT_NO_THROW(checkNetwork("k8s-pod.network_1", "agent"));
}

class ClusterSetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DUALSTACK_REQUIRE_ROOT();
    node_.emplace("nftnode");
    network_ = dualstack::testing::uniqueName("net");
  }
  void TearDown() override {
    if (!network_.empty()) ::unlink(lockPath(network_).c_str());
  }

  template <class F>
  auto inNode(F&& f) {
    const auto handle = netns::Netns::open(node_->path());
    netns::ScopedSetns in(handle);
    return f();
  }
  ClusterSets read() {
    return inNode([&] {
      Context nft;
      return readClusterSets(nft, network_);
    });
  }
  bool write(const std::vector<ip::Prefix>& v4, const std::vector<ip::Prefix>& v6) {
    return inNode([&] {
      Context nft;
      return writeClusterSets(nft, network_, v4, v6, readClusterSets(nft, network_));
    });
  }
  std::string nftCli(const std::string& args) {
    std::string out;
    if (node_->exec("nft " + args, &out) != 0) throw std::runtime_error("nft " + args + ": " + out);
    return out;
  }
  // The elements as the nft command line lists them.
  std::vector<std::string> cli(const char* set) {
    const auto doc =
        nlohmann::json::parse(nftCli("-j list set " + qualifiedTable(network_) + " " + set));
    std::vector<std::string> out;
    for (const auto& item : doc.at("nftables")) {
      if (!item.contains("set") || !item["set"].contains("elem")) continue;
      for (const auto& e : item["set"]["elem"]) {
        out.push_back(e.at("prefix").at("addr").get<std::string>() + "/" +
                      std::to_string(e["prefix"].at("len").get<int>()));
      }
    }
    return out;
  }

  std::optional<TestNetns> node_;
  std::string network_;
};

TEST_F(ClusterSetsTest, WriteCreatesTheTableAndSetsAndReadsBackWhatItWrote) {
  const ClusterSets none = read();
  EXPECT_FALSE(none.v4.has_value());
  EXPECT_FALSE(none.v6.has_value());
  // Adjacent /24s stay separate elements (no merging into a range that would read back as
  // something else), a nested prefix is dropped.
  EXPECT_TRUE(write(
      {pfx("10.244.1.0/24"), pfx("10.244.0.0/24"), pfx("10.244.2.0/24"), pfx("10.244.2.128/25")},
      {pfx("fd00:10:244:1::/64"), pfx("fd00:10:244::/64")}));
  EXPECT_THAT(cli("cluster4"), ElementsAre("10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"));
  EXPECT_THAT(cli("cluster6"), ElementsAre("fd00:10:244::/64", "fd00:10:244:1::/64"));
  const ClusterSets have = read();
  ASSERT_TRUE(have.v4 && have.v6);
  EXPECT_THAT(texts(*have.v4), ElementsAre("10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"));
  EXPECT_THAT(texts(*have.v6), ElementsAre("fd00:10:244::/64", "fd00:10:244:1::/64"));

  // The same again writes nothing.
  EXPECT_FALSE(write({pfx("10.244.2.0/24"), pfx("10.244.1.0/24"), pfx("10.244.0.0/24")},
                     {pfx("fd00:10:244::/64"), pfx("fd00:10:244:1::/64")}));
}

TEST_F(ClusterSetsTest, ChangesReplaceTheElementsAndEmptyListsEmptyTheSets) {
  write({pfx("10.244.0.0/24"), pfx("10.244.1.0/24")}, {pfx("fd00:10:244::/64")});
  EXPECT_TRUE(write({pfx("10.244.1.0/24"), pfx("10.244.7.0/24")}, {pfx("fd00:10:244::/64")}));
  EXPECT_THAT(cli("cluster4"), ElementsAre("10.244.1.0/24", "10.244.7.0/24"));
  EXPECT_THAT(cli("cluster6"), ElementsAre("fd00:10:244::/64"));
  EXPECT_TRUE(write({}, {}));
  EXPECT_THAT(cli("cluster4"), IsEmpty());
  EXPECT_THAT(cli("cluster6"), IsEmpty());
  const ClusterSets have = read();
  ASSERT_TRUE(have.v4 && have.v6) << "emptied, not removed";
  EXPECT_THAT(*have.v4, IsEmpty());
}

TEST_F(ClusterSetsTest, AFlushedRulesetIsRepairedByTheNextWrite) {
  write({pfx("10.244.0.0/24")}, {pfx("fd00:10:244::/64")});
  nftCli("flush ruleset");
  const ClusterSets gone = read();
  EXPECT_FALSE(gone.v4.has_value());
  EXPECT_TRUE(write({pfx("10.244.0.0/24")}, {pfx("fd00:10:244::/64")}));
  EXPECT_THAT(cli("cluster4"), ElementsAre("10.244.0.0/24"));
  EXPECT_THAT(cli("cluster6"), ElementsAre("fd00:10:244::/64"));
}

TEST_F(ClusterSetsTest, OtherObjectsOfTheTableAndOtherTablesAreLeftAlone) {
  nftCli("add table inet someone_else");
  write({pfx("10.244.0.0/24")}, {});
  const std::string t = qualifiedTable(network_);
  nftCli("add set " + t + " pods { type ifname\\; elements = { \"dsveth0\" }\\; }");
  write({pfx("10.244.5.0/24")}, {pfx("fd00::/64")});
  const std::string rs = nftCli("list ruleset");
  EXPECT_NE(rs.find("table inet someone_else"), std::string::npos) << rs;
  EXPECT_NE(rs.find("\"dsveth0\""), std::string::npos) << rs;
}

TEST_F(ClusterSetsTest, TheLockIsExclusiveAndItsWaitBounded) {
  std::optional<TableLock> held;
  held.emplace(network_);
  const auto start = std::chrono::steady_clock::now();
  try {
    TableLock second(network_, std::chrono::milliseconds(200));
    ADD_FAILURE() << "a second holder got the lock";
  } catch (const sys::Error& e) {
    EXPECT_EQ(e.code(), sys::Code::TryAgainLater);
    EXPECT_THAT(e.msg(), ::testing::HasSubstr(lockPath(network_)));
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
  held.reset();
  EXPECT_NO_THROW(TableLock again(network_, std::chrono::milliseconds(200)));
}

}  // namespace
}  // namespace dualstack::nft

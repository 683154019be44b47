// Naming of the node-side veth and what its alias records (no root needed).
#include "dualstack/plugin/hostveth.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace dualstack::plugin {
namespace {

TEST(HostVeth, NamesAreShortDistinctAndStable) {
  const cni::Attachment a{"cid-a", "eth0"};
  const std::string name = hostVethName("net1", a, 0);
  EXPECT_EQ(name.size(), 15u);
  EXPECT_EQ(name.rfind("ds", 0), 0u);
  EXPECT_EQ(hostVethName("net1", a, 0), name);
  std::set<std::string> names;
  for (int c = 0; c < kHostVethCandidates; ++c) names.insert(hostVethName("net1", a, c));
  names.insert(hostVethName("net2", a, 0));
  names.insert(hostVethName("net1", {"cid-a", "eth1"}, 0));
  // The separator keeps ("ab", "c") apart from ("a", "bc").
  names.insert(hostVethName("net1", {"cid-ae", "th0"}, 0));
  EXPECT_EQ(names.size(), static_cast<std::size_t>(kHostVethCandidates) + 3);
}

TEST(HostVeth, StoreTagNamesTheDirectoryNotItsSpelling) {
  const std::string tag = storeTag("/var/lib/cni/networks");
  EXPECT_EQ(tag.size(), 12u);
  EXPECT_EQ(tag.find_first_not_of("0123456789abcdef"), std::string::npos);
  for (const char* same :
       {"/var/lib/cni/networks/", "//var/lib/cni//networks", "/var/./lib/cni/networks/."}) {
    EXPECT_EQ(storeTag(same), tag) << same;
  }
  EXPECT_NE(storeTag("/var/lib/cni/networks2"), tag);
  EXPECT_NE(storeTag("/tmp/networks"), tag);
  EXPECT_EQ(storeTag("/"), storeTag("//"));
}

TEST(HostVeth, AliasNamesNetworkStoreAndAttachment) {
  const cni::Attachment a{"cid-a", "eth0"};
  const std::string store = storeTag("/data");
  const std::string alias = hostVethAlias("net1", store, a);
  EXPECT_EQ(alias, "dualstack:net1@" + store + ":eth0:cid-a");
  EXPECT_EQ(parseHostVethAlias("net1", store, alias), a);
  // Another store's link, another network's, a foreign one: not ours.
  EXPECT_EQ(parseHostVethAlias("net1", storeTag("/other"), alias), std::nullopt);
  EXPECT_EQ(parseHostVethAlias("net", store, alias), std::nullopt);
  EXPECT_EQ(parseHostVethAlias("net1.", store, alias), std::nullopt);
  EXPECT_EQ(parseHostVethAlias("net1", store, "uplink to the rack"), std::nullopt);
  EXPECT_EQ(parseHostVethAlias("net1", store, ""), std::nullopt);
  EXPECT_EQ(parseHostVethAlias("net1", store, "dualstack:net1@" + store + ":eth0:"), std::nullopt);
  EXPECT_EQ(parseHostVethAlias("net1", store, "dualstack:net1@" + store + "::cid-a"), std::nullopt);
  // Links made before the store was recorded belong to any store of their network.
  const std::string legacy = legacyHostVethAlias("net1", a);
  EXPECT_EQ(legacy, "dualstack:net1:eth0:cid-a");
  EXPECT_EQ(parseHostVethAlias("net1", store, legacy), a);
  EXPECT_EQ(parseHostVethAlias("net1", storeTag("/other"), legacy), a);
  EXPECT_EQ(parseHostVethAlias("net2", store, legacy), std::nullopt);
  // The longest attachment still fits the kernel's 255 bytes.
  const std::string network(64, 'n'), id(128, 'c');
  EXPECT_LE(hostVethAlias(network, store, {id, std::string(15, 'i')}).size(), 255u);
}

}  // namespace
}  // namespace dualstack::plugin

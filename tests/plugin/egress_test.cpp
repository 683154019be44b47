// ipMasq through the binary: a pod reaches a host outside the node (a second throwaway netns that
// has no route back to the pod CIDRs) only when masqueraded, and that host sees the node's address.
#include <gmock/gmock.h>

#include "plugin_fixture.hpp"

namespace dualstack::plugintest {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class PluginEgress : public PluginTest {
 protected:
  void SetUp() override {
    PluginTest::SetUp();
    if (IsSkipped()) return;
    outside_ = std::make_unique<TestNetns>("outside");
    // node up0 (192.0.2.1, 2001:db8:1::1) <-> outside up1 (192.0.2.2, 2001:db8:1::2); the outside
    // has only its connected routes. No DAD on this link: it is not what is tested.
    for (const TestNetns* ns : std::initializer_list<const TestNetns*>{&node(), outside_.get()}) {
      mustExec(*ns, "sysctl -qw net.ipv6.conf.default.accept_dad=0");
    }
    mustExec(node(), "ip link add up0 type veth peer name up1 netns " + outside_->name());
    // The outside end goes up first: a veth end that comes up after its peer ignores the first
    // neighbour solicitation for its addresses for up to a second (seen on 6.x kernels), and the
    // node resolves the outside's addresses, not the other way round.
    mustExec(*outside_,
             "ip addr add 192.0.2.2/24 dev up1 && ip addr add 2001:db8:1::2/64 dev up1 "
             "nodad && ip link set up1 up");
    mustExec(node(),
             "ip addr add 192.0.2.1/24 dev up0 && ip addr add 2001:db8:1::1/64 dev up0 nodad "
             "&& ip link set up0 up");
    // The outside counts echo requests whose source is the node's address.
    mustExec(*outside_,
             "nft \"add table inet seen; "
             "add chain inet seen input { type filter hook input priority 0; policy accept; }; "
             "add rule inet seen input ip saddr 192.0.2.1 icmp type echo-request counter; "
             "add rule inet seen input ip6 saddr 2001:db8:1::1 icmpv6 type echo-request counter\"");
  }
  void TearDown() override {
    outside_.reset();
    PluginTest::TearDown();
  }

  // Echo requests the outside received from the node's IPv4 and IPv6 address.
  std::pair<int, int> seenFromNode() {
    const json doc = json::parse(mustExec(*outside_, "nft -j list chain inet seen input"));
    std::vector<int> counts;
    for (const auto& item : doc.at("nftables")) {
      if (!item.contains("rule")) continue;
      for (const auto& e : item["rule"].at("expr")) {
        if (e.contains("counter")) counts.push_back(e["counter"].at("packets").get<int>());
      }
    }
    if (counts.size() != 2) throw std::runtime_error("unexpected counters: " + doc.dump());
    return {counts[0], counts[1]};
  }
  std::string nodeRuleset() { return mustExec(node(), "nft list ruleset"); }

  std::unique_ptr<TestNetns> outside_;
};

TEST_F(PluginEgress, WithoutIpMasqTheOutsideCannotAnswer) {
  auto& pod = newPod();
  const json conf = pluginConf("10-dualstack.conflist");
  add(pod, "cid-plain", conf);
  EXPECT_TRUE(ping(node(), "192.0.2.2")) << "the node itself reaches the outside";
  EXPECT_TRUE(ping(node(), "2001:db8:1::2")) << "the node itself reaches the outside";
  ASSERT_EQ(seenFromNode(), std::make_pair(1, 1));
  EXPECT_FALSE(ping(pod, "192.0.2.2"));
  EXPECT_FALSE(ping(pod, "2001:db8:1::2"));
  // The requests were not from the node's address (they did arrive: the outside has no way back).
  EXPECT_EQ(seenFromNode(), std::make_pair(1, 1));
  EXPECT_EQ(nodeRuleset(), "");
}

TEST_F(PluginEgress, IpMasqBothFamiliesSourceIsTheNodeAndLastDelLeavesNoRules) {
  auto& a = newPod();
  auto& b = newPod();
  const json conf = withMasq(pluginConf("10-dualstack.conflist"));
  const std::string network = conf["name"];
  const json ra = add(a, "cid-a", conf);
  const json rb = add(b, "cid-b", conf);

  // IPv6 first: the pod's very first packet, right after ADD.
  EXPECT_TRUE(ping(a, "2001:db8:1::2"));
  EXPECT_TRUE(ping(a, "192.0.2.2"));
  EXPECT_TRUE(ping(b, "2001:db8:1::2"));
  EXPECT_TRUE(ping(b, "192.0.2.2"));
  EXPECT_EQ(seenFromNode(), std::make_pair(2, 2));
  // Pod to pod stays unmasqueraded and works.
  EXPECT_TRUE(ping(a, resultAddr(rb, false)));
  EXPECT_TRUE(ping(a, resultAddr(rb, true)));

  const std::string hostA = ra["interfaces"][0]["name"];
  const std::string hostB = rb["interfaces"][0]["name"];
  EXPECT_THAT(nodeRuleset(), HasSubstr(hostA));
  EXPECT_THAT(nodeRuleset(), HasSubstr(hostB));

  ASSERT_EQ(del(a.path(), "cid-a", conf).exitCode, 0);
  EXPECT_THAT(nodeRuleset(), Not(HasSubstr(hostA)));
  EXPECT_THAT(nodeRuleset(), HasSubstr(hostB));
  EXPECT_TRUE(ping(b, "2001:db8:1::2"));
  EXPECT_EQ(seenFromNode(), std::make_pair(2, 3));

  // The last pod's namespace is already gone when its DEL comes, with an empty CNI_NETNS.
  b.remove();
  const RunResult d = del("", "cid-b", conf);
  EXPECT_EQ(d.exitCode, 0) << describe(d);
  EXPECT_EQ(nodeRuleset(), "");
  EXPECT_THAT(allocations(network), IsEmpty());
  // A DEL of an already deleted pod does not bring anything back.
  EXPECT_EQ(del("", "cid-b", conf).exitCode, 0);
  EXPECT_EQ(nodeRuleset(), "");
}

TEST_F(PluginEgress, IpMasqExceptIsNotMasqueraded) {
  auto& pod = newPod();
  json conf = withMasq(pluginConf("10-dualstack.conflist"));
  conf["ipMasqExcept"] = json::array({"192.0.2.0/24"});
  add(pod, "cid-a", conf);
  EXPECT_FALSE(ping(pod, "192.0.2.2")) << "192.0.2.0/24 is excepted: sent from the pod's address";
  EXPECT_TRUE(ping(pod, "2001:db8:1::2"));
  EXPECT_EQ(seenFromNode(), std::make_pair(0, 1));
}

TEST_F(PluginEgress, MasqueradeFailureAtTheEndOfAddRollsBackEverything) {
  // The masquerade step is the last of ADD; make it fail by putting a directory where its lock
  // file goes (a name unique to this test).
  auto& pod = newPod();
  const json conf = withMasq(pluginConf("10-dualstack.conflist"));
  const std::string network = conf["name"];
  const std::string lock = plugin::masqueradeLockPath(network);
  std::filesystem::create_directories(lock);
  struct RemoveDir {
    std::string path;
    ~RemoveDir() { ::rmdir(path.c_str()); }
  } removeLockDir{lock};

  const RunResult r = tryAdd(pod, "cid-a", conf);
  const json e = errorOf(r);
  EXPECT_EQ(e.value("code", 0), 5) << describe(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr(lock));
  EXPECT_THAT(nodeVeths(), ::testing::ElementsAre("up0"));
  EXPECT_THAT(linkNames(pod), ::testing::ElementsAre("lo"));
  EXPECT_THAT(allocations(network), IsEmpty());
  EXPECT_EQ(nodeRuleset(), "");
  EXPECT_THAT(routes(node(), false), ::testing::ElementsAre("192.0.2.0/24 dev up0 scope link"));
}

TEST_F(PluginEgress, GcRemovesMasqueradeOfStaleAttachments) {
  auto& a = newPod();
  auto& b = newPod();
  const json conf = withMasq(pluginConf("10-dualstack.conflist", "1.1.0"));
  const json ra = add(a, "cid-a", conf);
  const json rb = add(b, "cid-b", conf);
  json gc = conf;
  gc["cni.dev/valid-attachments"] = json::parse(R"([{"containerID": "cid-a", "ifname": "eth0"}])");
  const RunResult r = runNetworkVerb("GC", gc);
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_THAT(nodeRuleset(), HasSubstr(ra["interfaces"][0]["name"].get<std::string>()));
  EXPECT_THAT(nodeRuleset(), Not(HasSubstr(rb["interfaces"][0]["name"].get<std::string>())));
  EXPECT_TRUE(ping(a, "192.0.2.2"));

  gc["cni.dev/valid-attachments"] = json::array();
  EXPECT_EQ(runNetworkVerb("GC", gc).exitCode, 0);
  EXPECT_EQ(nodeRuleset(), "");
  EXPECT_THAT(nodeVeths(), ::testing::ElementsAre("up0"));
}

}  // namespace
}  // namespace dualstack::plugintest

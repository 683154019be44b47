// ipMasq through libnftables. Everything runs inside throwaway network namespaces: the test thread
// enters a "node" netns (ScopedSetns) around every nftables call, so the machine's own ruleset is
// never read or written.
#include "dualstack/plugin/masq.hpp"

#include <nftables/libnftables.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"
#include "dualstack/netns/netns.hpp"
#include "support/support.hpp"

namespace dualstack::plugin {
namespace {

using dualstack::testing::TestNetns;
using ::testing::ElementsAre;

ip::Prefix pfx(const char* text) {
  auto p = ip::Prefix::parse(text);
  if (!p) throw std::invalid_argument(std::string("bad prefix in test: ") + text);
  return *p;
}

template <class F>
auto inNetns(const TestNetns& ns, F&& f) {
  const auto handle = netns::Netns::open(ns.path());
  netns::ScopedSetns in(handle);
  return f();
}

// nft commands inside `ns` through libnftables; throws with nft's error text on failure.
std::string nftIn(const TestNetns& ns, const std::string& commands, bool json = false) {
  return inNetns(ns, [&] {
    struct Free {
      void operator()(nft_ctx* c) const { nft_ctx_free(c); }
    };
    std::unique_ptr<nft_ctx, Free> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    if (json) nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON);
    const int rc = nft_run_cmd_from_buffer(ctx.get(), commands.c_str());
    std::string out = nft_ctx_get_output_buffer(ctx.get());
    if (rc != 0) {
      throw std::runtime_error("nft " + commands + ": " + nft_ctx_get_error_buffer(ctx.get()));
    }
    return out;
  });
}

void run(const std::string& command) {
  std::string out;
  if (dualstack::testing::shell(command + " 2>&1", &out) != 0) {
    throw std::runtime_error("`" + command + "` failed: " + out);
  }
}

class MasqTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DUALSTACK_REQUIRE_ROOT();
    node_.emplace("mqnode");
    network_ = dualstack::testing::uniqueName("net");
  }
  void TearDown() override {
    // Safe here (and only here): nobody else uses this run's network name.
    if (!network_.empty()) ::unlink(masqueradeLockPath(network_).c_str());
  }

  void enable(std::string_view ifname, const std::vector<ip::Prefix>& exclude) {
    inNetns(*node_, [&] { enableMasquerade(network_, ifname, exclude); });
  }
  void disable(std::string_view ifname) {
    inNetns(*node_, [&] { disableMasquerade(network_, ifname); });
  }
  std::vector<std::string> pods() {
    return inNetns(*node_, [&] { return masqueradedInterfaces(network_); });
  }
  std::string ruleset() { return nftIn(*node_, "list ruleset"); }
  std::string table() { return "inet " + masqueradeTableName(network_); }

  // Elements of an interval set as "addr/len" text.
  std::vector<std::string> intervalSet(const std::string& set) {
    const auto doc = nlohmann::json::parse(nftIn(*node_, "list set " + table() + " " + set, true));
    std::vector<std::string> out;
    for (const auto& item : doc.at("nftables")) {
      if (!item.contains("set") || !item["set"].contains("elem")) continue;
      for (const auto& e : item["set"]["elem"]) {
        if (e.is_object() && e.contains("prefix")) {
          out.push_back(e["prefix"]["addr"].get<std::string>() + "/" +
                        std::to_string(e["prefix"]["len"].get<int>()));
        } else {
          out.push_back(e.dump());
        }
      }
    }
    return out;
  }
  std::vector<long> ruleHandles() {
    const auto doc = nlohmann::json::parse(nftIn(*node_, "list table " + table(), true));
    std::vector<long> out;
    for (const auto& item : doc.at("nftables")) {
      if (item.contains("rule")) out.push_back(item["rule"]["handle"].get<long>());
    }
    return out;
  }
  std::size_t ruleCount() { return ruleHandles().size(); }

  std::optional<TestNetns> node_;
  std::string network_;
};

const std::vector<ip::Prefix> kPodCidrs = {pfx("10.244.1.0/24"), pfx("fd00:10:244:1::/64")};

TEST_F(MasqTest, EnableCreatesTableChainSetsAndRules) {
  enable("dsveth0", kPodCidrs);
  const std::string rs = ruleset();
  EXPECT_NE(rs.find("table inet " + masqueradeTableName(network_)), std::string::npos) << rs;
  EXPECT_NE(rs.find("type nat hook postrouting priority srcnat"), std::string::npos) << rs;
  EXPECT_NE(rs.find("iifname @pods ip daddr != @except4 ip daddr != @cluster4 masquerade"),
            std::string::npos)
      << rs;
  EXPECT_NE(rs.find("iifname @pods ip6 daddr != @except6 ip6 daddr != @cluster6 masquerade"),
            std::string::npos)
      << rs;
  EXPECT_THAT(pods(), ElementsAre("dsveth0"));
  EXPECT_THAT(intervalSet("except4"), ElementsAre("10.244.1.0/24", "224.0.0.0/4"));
  EXPECT_THAT(intervalSet("except6"), ElementsAre("fd00:10:244:1::/64", "ff00::/8"));
}

TEST_F(MasqTest, ClusterSetsAreDeclaredEmptyAndTheirElementsLeftToTheAgent) {
  enable("dsveth0", kPodCidrs);
  EXPECT_TRUE(intervalSet("cluster4").empty());
  EXPECT_TRUE(intervalSet("cluster6").empty());
  // What the agent does: every Node's podCIDRs.
  nftIn(*node_, "add element " + table() + " cluster4 { 10.244.0.0/24, 10.244.2.0/24 }\n" +
                    "add element " + table() + " cluster6 { fd00:10:244:2::/64 }\n");
  enable("dsveth1", kPodCidrs);
  enable("dsveth0", {pfx("10.99.0.0/16")});
  EXPECT_THAT(intervalSet("cluster4"), ElementsAre("10.244.0.0/24", "10.244.2.0/24"));
  EXPECT_THAT(intervalSet("cluster6"), ElementsAre("fd00:10:244:2::/64"));
}

TEST_F(MasqTest, TheLastDelKeepsATableWhoseClusterSetsAreFilled) {
  enable("dsveth0", kPodCidrs);
  nftIn(*node_, "add element " + table() + " cluster6 { fd00:10:244:2::/64 }\n");
  disable("dsveth0");
  EXPECT_TRUE(pods().empty());
  EXPECT_THAT(intervalSet("cluster6"), ElementsAre("fd00:10:244:2::/64"));
  EXPECT_EQ(ruleCount(), 2u) << "rules stay; with no pod in the set they match nothing";
  // A new pod finds the cluster podCIDRs in place.
  enable("dsveth1", kPodCidrs);
  EXPECT_THAT(pods(), ElementsAre("dsveth1"));
  EXPECT_THAT(intervalSet("cluster6"), ElementsAre("fd00:10:244:2::/64"));
  // Without cluster podCIDRs the last DEL removes everything again.
  nftIn(*node_, "flush set " + table() + " cluster6\n");
  disable("dsveth1");
  EXPECT_EQ(ruleset(), "");
}

TEST_F(MasqTest, RulesOfAnOlderVersionAreRewritten) {
  // The v1 layout: no cluster sets, rules without them.
  nftIn(*node_, "add table " + table() + "\nadd chain " + table() +
                    " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n" +
                    "add set " + table() + " pods { type ifname; }\n" + "add set " + table() +
                    " except4 { type ipv4_addr; flags interval; }\n" + "add set " + table() +
                    " except6 { type ipv6_addr; flags interval; }\n" + "add rule " + table() +
                    " postrouting iifname @pods ip daddr != @except4 masquerade comment "
                    "\"dualstack-cni ipMasq v1 IPv4\"\n" +
                    "add rule " + table() +
                    " postrouting iifname @pods ip6 daddr != @except6 masquerade comment "
                    "\"dualstack-cni ipMasq v1 IPv6\"\n");
  enable("dsveth0", kPodCidrs);
  EXPECT_EQ(ruleCount(), 2u);
  const std::string rs = ruleset();
  EXPECT_NE(rs.find("ip daddr != @except4 ip daddr != @cluster4 masquerade"), std::string::npos)
      << rs;
  EXPECT_NE(rs.find("ip6 daddr != @except6 ip6 daddr != @cluster6 masquerade"), std::string::npos)
      << rs;
}

TEST_F(MasqTest, EnableTwiceIsIdempotent) {
  enable("dsveth0", kPodCidrs);
  const std::string first = ruleset();
  const auto handles = ruleHandles();
  enable("dsveth0", kPodCidrs);
  EXPECT_EQ(ruleset(), first);
  EXPECT_EQ(ruleCount(), 2u);
  EXPECT_THAT(pods(), ElementsAre("dsveth0"));
  // Unchanged rules are not rewritten (that would cost an RCU grace period per ADD).
  enable("dsveth1", kPodCidrs);
  EXPECT_EQ(ruleHandles(), handles);
}

TEST_F(MasqTest, EnableRepairsRulesSomeoneChanged) {
  enable("dsveth0", kPodCidrs);
  nftIn(*node_, "flush chain " + table() + " postrouting\nadd rule " + table() +
                    " postrouting iifname @pods masquerade\n");
  enable("dsveth1", kPodCidrs);
  EXPECT_EQ(ruleCount(), 2u);
  const std::string rs = ruleset();
  EXPECT_NE(rs.find("iifname @pods ip daddr != @except4 ip daddr != @cluster4 masquerade"),
            std::string::npos)
      << rs;
  EXPECT_NE(rs.find("iifname @pods ip6 daddr != @except6 ip6 daddr != @cluster6 masquerade"),
            std::string::npos)
      << rs;
  EXPECT_THAT(pods(), ElementsAre("dsveth0", "dsveth1"));
}

TEST_F(MasqTest, TwoPodsDisableOneKeepsTableDisableBothRemovesEverything) {
  enable("dsvethA", kPodCidrs);
  enable("dsvethB", kPodCidrs);
  EXPECT_THAT(pods(), ElementsAre("dsvethA", "dsvethB"));
  EXPECT_EQ(ruleCount(), 2u);

  disable("dsvethA");
  EXPECT_THAT(pods(), ElementsAre("dsvethB"));
  EXPECT_EQ(ruleCount(), 2u);
  disable("dsvethA");  // repeated DEL
  EXPECT_THAT(pods(), ElementsAre("dsvethB"));

  disable("dsvethB");
  EXPECT_EQ(ruleset(), "");
  EXPECT_TRUE(pods().empty());
  disable("dsvethB");
  EXPECT_EQ(ruleset(), "");
}

TEST_F(MasqTest, DisableWhenNothingExistsIsSuccess) {
  EXPECT_NO_THROW(disable("dsveth0"));
  EXPECT_TRUE(pods().empty());
  EXPECT_EQ(ruleset(), "");
}

TEST_F(MasqTest, DisableOfAnUnknownPodKeepsTheOthers) {
  enable("dsvethA", kPodCidrs);
  disable("dsvethZ");
  EXPECT_THAT(pods(), ElementsAre("dsvethA"));
  EXPECT_EQ(ruleCount(), 2u);
}

TEST_F(MasqTest, ExclusionsAreReplacedOnEveryEnable) {
  enable("dsvethA", kPodCidrs);
  // Overlapping, duplicate and host-bit prefixes, as an operator may well write them.
  enable("dsvethB",
         {pfx("10.244.1.0/24"), pfx("10.244.0.0/16"), pfx("10.96.0.5/12"), pfx("10.96.0.0/12"),
          pfx("fd00:10:244:1::/64"), pfx("fd00:10:244::/48"), pfx("2001:db8:1::/48")});
  EXPECT_THAT(intervalSet("except4"), ElementsAre("10.96.0.0/12", "10.244.0.0/16", "224.0.0.0/4"));
  EXPECT_THAT(intervalSet("except6"),
              ElementsAre("2001:db8:1::/48", "fd00:10:244::/48", "ff00::/8"));

  enable("dsvethA", {pfx("10.244.1.0/24")});
  EXPECT_THAT(intervalSet("except4"), ElementsAre("10.244.1.0/24", "224.0.0.0/4"));
  EXPECT_THAT(intervalSet("except6"), ElementsAre("ff00::/8"));
  EXPECT_THAT(pods(), ElementsAre("dsvethA", "dsvethB"));
  EXPECT_EQ(ruleCount(), 2u);
}

TEST_F(MasqTest, OtherTablesAreLeftAlone) {
  nftIn(*node_, "add table inet someone_else\nadd chain inet someone_else c\n");
  enable("dsveth0", kPodCidrs);
  disable("dsveth0");
  EXPECT_EQ(ruleset(), "table inet someone_else {\n\tchain c {\n\t}\n}\n");
}

TEST_F(MasqTest, NetworksAreIndependent) {
  const std::string other = network_ + ".b-2_x";
  enable("dsveth0", kPodCidrs);
  inNetns(*node_, [&] { enableMasquerade(other, "dsveth1", kPodCidrs); });
  disable("dsveth0");
  EXPECT_TRUE(pods().empty());
  EXPECT_THAT(inNetns(*node_, [&] { return masqueradedInterfaces(other); }),
              ElementsAre("dsveth1"));
  inNetns(*node_, [&] { disableMasquerade(other, "dsveth1"); });
  EXPECT_EQ(ruleset(), "");
  ::unlink(masqueradeLockPath(other).c_str());
}

TEST_F(MasqTest, RejectsBadNamesBeforeTouchingNftables) {
  auto codeOf = [&](auto&& f) {
    try {
      inNetns(*node_, f);
    } catch (const cni::Error& e) {
      return e.code();
    }
    return cni::Code{0};
  };
  for (const char* bad : {"", "../x", "-x", "a b", "a\"b", "a/b", "a;b"}) {
    EXPECT_EQ(codeOf([&] { enableMasquerade(bad, "dsveth0", kPodCidrs); }),
              cni::Code::InvalidConfig)
        << bad;
    EXPECT_EQ(codeOf([&] { disableMasquerade(bad, "dsveth0"); }), cni::Code::InvalidConfig) << bad;
  }
  for (const char* bad : {"", "a\"b", "a b", "a\\b", "0123456789abcdef"}) {
    EXPECT_EQ(codeOf([&] { enableMasquerade(network_, bad, kPodCidrs); }), cni::Code::Internal)
        << bad;
  }
  EXPECT_EQ(ruleset(), "");
}

// The masquerade lock held by a process that does not let go: enable waits for the bound, then
// names the lock and its holder with code 11, and the ruleset is left alone.
TEST_F(MasqTest, AHeldLockIsTryAgainLaterNamingTheLockAndItsHolder) {
  ::mkdir("/run/dualstack-cni", 0700);
  const std::string lock = masqueradeLockPath(network_);
  const std::string before = ruleset();
  {
    const dualstack::testing::LockHolder holder(lock);
    const auto start = std::chrono::steady_clock::now();
    try {
      enable("dsh0", kPodCidrs);
      ADD_FAILURE() << "enable did not wait for the lock";
    } catch (const cni::Error& e) {
      EXPECT_EQ(e.code(), cni::Code::TryAgainLater);
      EXPECT_THAT(e.msg(), ::testing::HasSubstr("the masquerade lock " + lock + " is held by PID " +
                                                std::to_string(holder.pid())));
      EXPECT_THAT(e.msg(), ::testing::HasSubstr("not released within 20 s"));
    }
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, std::chrono::seconds(20));
    EXPECT_LT(took, std::chrono::seconds(35));
  }
  EXPECT_EQ(ruleset(), before);
  enable("dsh0", kPodCidrs);
  EXPECT_THAT(pods(), ElementsAre("dsh0"));
}

TEST(MasqNames, LongNetworkNamesAreShortenedCollisionFree) {
  EXPECT_EQ(masqueradeTableName("k8s-pod-network"), "dualstack_k8s-pod-network");
  EXPECT_EQ(masqueradeLockPath("k8s-pod-network"), "/run/dualstack-cni/masq-k8s-pod-network.lock");
  const std::string a(300, 'a');
  const std::string b = a + "b";
  EXPECT_LE(masqueradeTableName(a).size(), 210u);
  EXPECT_NE(masqueradeTableName(a), masqueradeTableName(b));
}

// Several plugin processes at once: without the per-network lock a DEL that decided "last pod,
// delete the table" can delete another process's freshly added pod with it.
TEST_F(MasqTest, ParallelEnableDisableKeepsEveryLivePod) {
  constexpr int kProcs = 6;
  constexpr int kRounds = 15;
  std::vector<pid_t> children;
  for (int i = 0; i < kProcs; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      int rc = 0;
      try {
        const std::string ifname = "dsvpar" + std::to_string(i);
        inNetns(*node_, [&] {
          for (int r = 0; r < kRounds; ++r) {
            enableMasquerade(network_, ifname, kPodCidrs);
            disableMasquerade(network_, ifname);
          }
          enableMasquerade(network_, ifname, kPodCidrs);
        });
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", i, e.what());
        rc = 1;
      }
      ::_exit(rc);
    }
    ASSERT_GT(pid, 0);
    children.push_back(pid);
  }
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(pods().size(), static_cast<std::size_t>(kProcs));
  EXPECT_EQ(ruleCount(), 2u);
  for (int i = 0; i < kProcs; ++i) disable("dsvpar" + std::to_string(i));
  EXPECT_EQ(ruleset(), "");
}

// Real traffic: pod -> node (routes, forwards, masquerades) -> outside. "outside" has no route
// back to the pod CIDRs, so a ping only comes back when the node masqueraded it; an nftables
// table in "outside" counts echo requests by source address to show what it saw.
class MasqTrafficTest : public MasqTest {
 protected:
  void SetUp() override {
    MasqTest::SetUp();
    if (IsSkipped()) return;
    pod_.emplace("mqpod");
    outside_.emplace("mqout");
    const std::string n = node_->name(), p = pod_->name(), o = outside_->name();
    // Until its link-local address has passed DAD a router sends no neighbour solicitation for a
    // forwarded packet (ndisc_solicit needs a non-tentative source), so the first IPv6 ping
    // would be lost for a reason that has nothing to do with masquerade.
    for (const auto& ns : {n, p, o}) {
      run("ip netns exec " + ns +
          " sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0");
    }
    run("ip -n " + n + " link add vpod type veth peer name eth0 netns " + p);
    run("ip -n " + n + " link add vout type veth peer name eth0 netns " + o);
    run("ip -n " + p + " addr add 10.244.1.5/24 dev eth0");
    run("ip -n " + p + " addr add fd00:10:244:1::5/64 dev eth0 nodad");
    run("ip -n " + p + " link set eth0 up");
    run("ip -n " + n + " addr add 10.244.1.1/32 dev vpod");
    run("ip -n " + n + " addr add fd00:10:244:1::1/128 dev vpod nodad");
    run("ip -n " + n + " link set vpod up");
    run("ip -n " + n + " addr add 192.0.2.1/24 dev vout");
    run("ip -n " + n + " addr add 2001:db8::1/64 dev vout nodad");
    run("ip -n " + n + " link set vout up");
    run("ip -n " + o + " addr add 192.0.2.2/24 dev eth0");
    run("ip -n " + o + " addr add 2001:db8::2/64 dev eth0 nodad");
    run("ip -n " + o + " link set eth0 up");
    run("ip -n " + p + " route add 10.244.1.1/32 dev eth0");
    run("ip -n " + p + " route add default via 10.244.1.1 dev eth0");
    run("ip -n " + p + " -6 route add default via fd00:10:244:1::1 dev eth0");
    run("ip -n " + n + " route add 10.244.1.5/32 dev vpod");
    run("ip -n " + n + " -6 route add fd00:10:244:1::5/128 dev vpod");
    run("ip netns exec " + n + " sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
    // Strict reverse-path filtering would drop the unmasqueraded requests before the counters.
    run("ip netns exec " + o +
        " sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0");
    nftIn(*outside_, R"(
      table inet seen {
        counter node4 {}
        counter pod4 {}
        counter node6 {}
        counter pod6 {}
        chain input {
          type filter hook input priority 0; policy accept;
          icmp type echo-request ip saddr 192.0.2.1 counter name "node4"
          icmp type echo-request ip saddr 10.244.1.5 counter name "pod4"
          icmpv6 type echo-request ip6 saddr 2001:db8::1 counter name "node6"
          icmpv6 type echo-request ip6 saddr fd00:10:244:1::5 counter name "pod6"
        }
      })");
  }

  // A fresh ICMP identifier per ping: conntrack keys ICMP flows by it, and an entry left by an
  // earlier unmasqueraded ping would keep the next one from being NATed.
  bool ping(const std::string& dst) {
    static int ident = 4000;
    return dualstack::testing::shell("ip netns exec " + pod_->name() + " ping -q -c1 -W1 -e " +
                                     std::to_string(++ident) + " " + dst + " >/dev/null 2>&1") == 0;
  }

  std::map<std::string, long> seen() {
    const auto doc = nlohmann::json::parse(nftIn(*outside_, "list counters table inet seen", true));
    std::map<std::string, long> out;
    for (const auto& item : doc.at("nftables")) {
      if (item.contains("counter")) {
        out[item["counter"]["name"].get<std::string>()] = item["counter"]["packets"].get<long>();
      }
    }
    return out;
  }

  std::map<std::string, long> counts(long node4, long pod4, long node6, long pod6) {
    return {{"node4", node4}, {"pod4", pod4}, {"node6", node6}, {"pod6", pod6}};
  }

  std::optional<TestNetns> pod_;
  std::optional<TestNetns> outside_;
};

TEST_F(MasqTrafficTest, PodReachesOutsideOnlyThroughMasquerade) {
  // Without masquerade the requests arrive with the pod's address and the replies have no way back.
  EXPECT_FALSE(ping("192.0.2.2"));
  EXPECT_FALSE(ping("2001:db8::2"));
  EXPECT_EQ(seen(), counts(0, 1, 0, 1));

  enable("vpod", kPodCidrs);
  EXPECT_TRUE(ping("192.0.2.2"));
  EXPECT_TRUE(ping("2001:db8::2"));
  EXPECT_EQ(seen(), counts(1, 1, 1, 1));

  // An excluded destination keeps the pod's own source address.
  enable("vpod", {kPodCidrs[0], kPodCidrs[1], pfx("192.0.2.0/24"), pfx("2001:db8::/64")});
  EXPECT_FALSE(ping("192.0.2.2"));
  EXPECT_FALSE(ping("2001:db8::2"));
  EXPECT_EQ(seen(), counts(1, 2, 1, 2));

  enable("vpod", kPodCidrs);
  EXPECT_TRUE(ping("192.0.2.2"));
  EXPECT_TRUE(ping("2001:db8::2"));
  EXPECT_EQ(seen(), counts(2, 2, 2, 2));

  disable("vpod");
  EXPECT_EQ(ruleset(), "");
  EXPECT_FALSE(ping("192.0.2.2"));
  EXPECT_FALSE(ping("2001:db8::2"));
  EXPECT_EQ(seen(), counts(2, 3, 2, 3));
}

}  // namespace
}  // namespace dualstack::plugin

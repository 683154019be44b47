// CHECK of the dualstack binary: passes right after ADD, and names exactly what is missing after
// someone changed the pod or the node by hand.
#include <gmock/gmock.h>

#include "plugin_fixture.hpp"

namespace dualstack::plugintest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PluginCheck : public PluginTest {
 protected:
  void SetUp() override {
    PluginTest::SetUp();
    if (IsSkipped()) return;
    pod_ = &newPod();
    conf_ = pluginConf("10-dualstack.conflist", "1.0.0");
    result_ = add(*pod_, "cid-check", conf_);
    hostName_ = result_["interfaces"][0]["name"];
  }

  // CHECK must fail with code 103; returns its message.
  std::string failedCheck() {
    const RunResult r = check(*pod_, "cid-check", conf_, result_);
    const json e = errorOf(r);
    EXPECT_EQ(e.value("code", 0), 103) << describe(r);
    return e.value("msg", "");
  }

  TestNetns* pod_ = nullptr;
  json conf_;
  json result_;
  std::string hostName_;
};

TEST_F(PluginCheck, PassesAfterAdd) {
  const RunResult r = check(*pod_, "cid-check", conf_, result_);
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(r.out, "");
  // Also with the result as a 1.1.0 runtime caches it.
  json conf11 = pluginConf("10-dualstack.conflist", "1.1.0");
  json prev11 = result_;
  prev11["cniVersion"] = "1.1.0";
  const RunResult r11 = check(*pod_, "cid-check", conf11, prev11);
  EXPECT_EQ(r11.exitCode, 0) << describe(r11);
}

TEST_F(PluginCheck, FailsWithoutThePodsIpv4DefaultRoute) {
  mustExec(*pod_, "ip route del default");
  const std::string msg = failedCheck();
  EXPECT_THAT(msg, HasSubstr("pod route 0.0.0.0/0 via 10.244.1.1 is missing"));
  EXPECT_THAT(msg, Not(HasSubstr("::/0")));
}

TEST_F(PluginCheck, FailsWithoutThePodsIpv6DefaultRoute) {
  mustExec(*pod_, "ip -6 route del default");
  const std::string msg = failedCheck();
  EXPECT_THAT(msg, HasSubstr("pod route ::/0 via fd00:10:244:1::1 is missing"));
  EXPECT_THAT(msg, Not(HasSubstr("0.0.0.0/0")));
}

TEST_F(PluginCheck, FailsWithoutThePodsIpv6Address) {
  mustExec(*pod_, "ip addr del fd00:10:244:1::2/64 dev eth0");
  const std::string msg = failedCheck();
  EXPECT_THAT(msg, HasSubstr("address fd00:10:244:1::2/64 is missing on eth0"));
  EXPECT_THAT(msg, Not(HasSubstr("10.244.1.2/24")));
}

TEST_F(PluginCheck, FailsWithoutThePodsIpv4Address) {
  mustExec(*pod_, "ip addr del 10.244.1.2/24 dev eth0");
  EXPECT_THAT(failedCheck(), HasSubstr("address 10.244.1.2/24 is missing on eth0"));
}

TEST_F(PluginCheck, FailsWithoutTheNodeRouteToThePod) {
  mustExec(node(), "ip route del 10.244.1.2/32 dev " + hostName_);
  EXPECT_THAT(failedCheck(),
              HasSubstr("node route 10.244.1.2/32 dev " + hostName_ + " is missing"));
}

TEST_F(PluginCheck, FailsWhenTheNodeEndIsDown) {
  mustExec(node(), "ip link set " + hostName_ + " down");
  EXPECT_THAT(failedCheck(), HasSubstr("node-side veth " + hostName_ + " is down"));
}

TEST_F(PluginCheck, FailsWhenThePodInterfaceIsGone) {
  mustExec(*pod_, "ip link del eth0");
  EXPECT_THAT(failedCheck(), HasSubstr("no interface eth0"));
}

TEST_F(PluginCheck, FailsWhenTheMacDiffers) {
  mustExec(*pod_, "ip link set eth0 address 02:00:00:00:00:01");
  EXPECT_THAT(failedCheck(), HasSubstr("eth0 has MAC 02:00:00:00:00:01, prevResult says " +
                                       result_["interfaces"][1]["mac"].get<std::string>()));
}

TEST_F(PluginCheck, FailsAfterDel) {
  ASSERT_EQ(del(pod_->path(), "cid-check", conf_).exitCode, 0);
  const RunResult r = check(*pod_, "cid-check", conf_, result_);
  // IPAM CHECK comes first and finds the allocation gone.
  const json e = errorOf(r);
  EXPECT_EQ(e.value("code", 0), 103) << describe(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr("dualstack-ipam"));
  EXPECT_THAT(e.value("msg", ""), HasSubstr("10.244.1.0/24"));
}

TEST_F(PluginCheck, WithoutPrevResultIsAConfigError) {
  json conf = conf_;
  const RunResult r = run("CHECK", pod_->path(), "cid-check", conf);
  const json e = errorOf(r);
  EXPECT_EQ(e.value("code", 0), 7) << describe(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr("prevResult"));
}

}  // namespace
}  // namespace dualstack::plugintest

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <cerrno>
#include <stdexcept>

#include "dualstack/netlink/link.hpp"
#include "dualstack/netlink/socket.hpp"
#include "dualstack/sys/error.hpp"
#include "netlink/kernel_fixture.hpp"

namespace dualstack {
namespace {

using netlink::KernelStatus;
using netlink::Message;
using sys::Code;
using ::testing::HasSubstr;
using testkernel::KernelTest;

[[maybe_unused]] auto* const kEnv =
    ::testing::AddGlobalTestEnvironment(new testkernel::KernelEnvironment);

class SocketTest : public KernelTest {};

Message getLinkByName(const std::string& name) {
  Message m(RTM_GETLINK, 0);
  m.append(ifinfomsg{});
  m.putString(IFLA_IFNAME, name);
  return m;
}

TEST_F(SocketTest, KernelErrnoComesBackAsStatus) {
  Message m = getLinkByName("dstnone");
  const KernelStatus st = host().request(m);
  EXPECT_EQ(st.err, ENODEV);
  EXPECT_FALSE(st.ok());
}

TEST_F(SocketTest, RepliesAndAckOfAGetRequest) {
  Message m = getLinkByName("lo");
  int replies = 0;
  const KernelStatus st = host().request(m, [&](const nlmsghdr& hdr) {
    EXPECT_EQ(hdr.nlmsg_type, RTM_NEWLINK);
    ++replies;
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(replies, 1);
  // The same message again: sequence numbers are reassigned.
  EXPECT_TRUE(host().request(m).ok());
}

TEST_F(SocketTest, HandlerExceptionIsRethrownAfterTheDumpIsDrained) {
  makeVeth("sock0");
  makeVeth("sock1", "eth1");
  Message m(RTM_GETLINK, NLM_F_DUMP);
  m.append(ifinfomsg{});
  int seen = 0;
  EXPECT_THROW(host().request(m,
                              [&](const nlmsghdr&) {
                                ++seen;
                                throw std::runtime_error("handler failed");
                              }),
               std::runtime_error);
  EXPECT_EQ(seen, 1);
  // Nothing of the interrupted dump is left in the socket to confuse the next request.
  EXPECT_EQ(netlink::listLinks(host()).size(), 3u);
  EXPECT_TRUE(netlink::getLink(host(), "lo").has_value());
}

TEST_F(SocketTest, ManyRequestsInARow) {
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(netlink::getLink(pod(), "lo").has_value());
    ASSERT_FALSE(netlink::getLink(pod(), "dstnone").has_value());
    ASSERT_EQ(netlink::listLinks(pod()).size(), 1u);
  }
}

TEST_F(SocketTest, ErrorMessagesAndCodes) {
  auto e = host().error("do x", KernelStatus{EEXIST, "kernel says", false}, "hint");
  EXPECT_EQ(e.code(), Code::AlreadyExists);
  EXPECT_EQ(e.msg(), "do x in node netns: File exists: kernel says (hint)");

  e = host().error("do y", KernelStatus{EPERM, "", false});
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_EQ(e.msg(),
            "do y in node netns: Operation not permitted (the plugin needs CAP_NET_ADMIN in that "
            "network namespace)");

  EXPECT_EQ(pod().error("z", KernelStatus{EBUSY, "", false}).code(), Code::TryAgainLater);
  EXPECT_EQ(pod().error("z", KernelStatus{ENOBUFS, "", false}).code(), Code::TryAgainLater);
  EXPECT_EQ(pod().error("z", KernelStatus{EINVAL, "", false}).msg(),
            "z in pod netns: Invalid argument");
  EXPECT_NO_THROW(pod().check("z", KernelStatus{}));
  EXPECT_THROW(pod().check("z", KernelStatus{EINVAL, "", false}), sys::Error);
}

TEST_F(SocketTest, ExtendedAckTextIsInTheMessage) {
  auto veth = makeVeth("sock2");
  const auto e = testkernel::errorOf([&] { netlink::setLinkMtu(pod(), veth.peer, 70000); });
  EXPECT_THAT(e.msg(), HasSubstr("set MTU 70000 of eth0 in pod netns: Invalid argument: "));
  EXPECT_THAT(e.msg(), HasSubstr("mtu"));
}

TEST_F(SocketTest, SocketsStayInTheirNamespace) {
  makeVeth("sock3");
  // host() was opened in the node and pod() in the pod; the thread is in the node all along.
  EXPECT_TRUE(netlink::getLink(host(), "dstsock3").has_value());
  EXPECT_FALSE(netlink::getLink(host(), "eth0").has_value());
  EXPECT_TRUE(netlink::getLink(pod(), "eth0").has_value());
  EXPECT_FALSE(netlink::getLink(pod(), "dstsock3").has_value());
}

}  // namespace
}  // namespace dualstack

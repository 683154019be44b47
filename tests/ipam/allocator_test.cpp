#include "dualstack/ipam/allocator.hpp"

#include <gtest/gtest.h>

#include "dualstack/cni/error.hpp"
#include "ipam/fake_store.hpp"

namespace dualstack::ipam {
namespace {

using testing::FakeStore;

ip::Address A(const char* text) { return *ip::Address::parse(text); }

RangeSet set(std::size_t id, const char* cidr, const char* start = nullptr,
             const char* end = nullptr, const char* gw = nullptr) {
  auto opt = [](const char* t) { return t ? std::optional(A(t)) : std::nullopt; };
  return RangeSet{id, {makeRange(*ip::Prefix::parse(cidr), opt(start), opt(end), opt(gw), "test")}};
}

const cni::Attachment kPod{"pod1", "eth0"};

template <typename F>
cni::Code codeOf(F&& f) {
  try {
    f();
  } catch (const cni::Error& e) {
    return e.code();
  }
  return cni::Code::Internal;
}

template <typename F>
std::string messageOf(F&& f) {
  try {
    f();
  } catch (const cni::Error& e) {
    return e.msg();
  }
  return "(no error)";
}

TEST(FindFree, RoundRobinFromTheLastReservedSkippingTheGateway) {
  FakeStore store;
  const RangeSet s = set(0, "10.244.1.0/24");
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) {
    auto a = findFree(s, store);
    ASSERT_TRUE(a);
    got.push_back(a->str());
    store.held[*a] = Owner{"x" + std::to_string(i), "eth0"};
    store.last[0] = *a;
  }
  EXPECT_EQ(got, (std::vector<std::string>{"10.244.1.2", "10.244.1.3", "10.244.1.4"}));
  // A released address is not handed straight back: the search continues after the last one.
  store.held.erase(A("10.244.1.3"));
  EXPECT_EQ(findFree(s, store)->str(), "10.244.1.5");
}

TEST(FindFree, WrapsAroundToTheStartOfTheRange) {
  FakeStore store;
  const RangeSet s = set(0, "10.244.1.0/29");  // .1 gateway, .2-.6 usable, .7 broadcast
  for (const char* a : {"10.244.1.2", "10.244.1.4", "10.244.1.5", "10.244.1.6"}) store.hold(a, "x");
  store.last[0] = A("10.244.1.6");
  EXPECT_EQ(findFree(s, store)->str(), "10.244.1.3");
}

TEST(FindFree, NeverHandsOutNetworkGatewayOrBroadcast) {
  FakeStore store;
  // Explicit bounds covering the whole subnet, gateway in the middle.
  const RangeSet s = set(0, "10.0.0.0/29", "10.0.0.0", "10.0.0.7", "10.0.0.3");
  std::vector<std::string> got;
  while (auto a = findFree(s, store)) {
    got.push_back(a->str());
    store.held[*a] = Owner{"x", "eth0"};
    store.last[0] = *a;
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}));
  EXPECT_TRUE(s.usable() == 5);
}

TEST(FindFree, Ipv6KeepsTheLastAddressButNotTheNetwork) {
  FakeStore store;
  const RangeSet s = set(0, "fd00::/126");  // ::1 gateway; ::2 and ::3 usable
  std::vector<std::string> got;
  while (auto a = findFree(s, store)) {
    got.push_back(a->str());
    store.held[*a] = Owner{"x", "eth0"};
    store.last[0] = *a;
  }
  EXPECT_EQ(got, (std::vector<std::string>{"fd00::2", "fd00::3"}));
}

TEST(FindFree, HonoursRangeStartAndEnd) {
  FakeStore store;
  const RangeSet s = set(0, "10.0.0.0/24", "10.0.0.100", "10.0.0.101");
  EXPECT_EQ(findFree(s, store)->str(), "10.0.0.100");
  store.hold("10.0.0.100", "x");
  store.last[0] = A("10.0.0.100");
  EXPECT_EQ(findFree(s, store)->str(), "10.0.0.101");
  store.hold("10.0.0.101", "x");
  EXPECT_FALSE(findFree(s, store));
}

TEST(FindFree, IgnoresALastReservedAddressOutsideTheSet) {
  FakeStore store;
  const RangeSet s = set(0, "10.0.0.0/24", "10.0.0.10", "10.0.0.20");
  store.last[0] = A("10.9.9.9");
  EXPECT_EQ(findFree(s, store)->str(), "10.0.0.10");
  store.last[0] = A("fd00::1");
  EXPECT_EQ(findFree(s, store)->str(), "10.0.0.10");
}

TEST(FindFree, RoundRobinAcrossTheRangesOfOneSet) {
  FakeStore store;
  RangeSet s{0,
             {makeRange(*ip::Prefix::parse("10.0.0.0/24"), A("10.0.0.10"), A("10.0.0.11"),
                        std::nullopt, "a"),
              makeRange(*ip::Prefix::parse("10.0.1.0/24"), A("10.0.1.10"), A("10.0.1.10"),
                        std::nullopt, "b")}};
  std::vector<std::string> got;
  while (auto a = findFree(s, store)) {
    got.push_back(a->str());
    store.held[*a] = Owner{"x", "eth0"};
    store.last[0] = *a;
  }
  EXPECT_EQ(got, (std::vector<std::string>{"10.0.0.10", "10.0.0.11", "10.0.1.10"}));
  store.held.erase(A("10.0.0.10"));
  EXPECT_EQ(findFree(s, store)->str(), "10.0.0.10");  // wrapped from the second range
}

TEST(FindFree, A64WithTenThousandAllocationsIsNeverScannedAddressByAddress) {
  FakeStore store;
  const RangeSet s = set(1, "fd00:10:244:1::/64");
  for (int i = 0; i < 10000; ++i) {
    auto a = findFree(s, store);
    ASSERT_TRUE(a);
    store.held[*a] = Owner{"p" + std::to_string(i), "eth0"};
    store.last[1] = *a;
  }
  // Each allocation looked at one candidate.
  EXPECT_EQ(store.lookups, 10000U);
  EXPECT_EQ(store.last[1].str(), "fd00:10:244:1::2711");
  // Worst case: the round robin restarts in front of all of them.
  store.lookups = 0;
  store.last.erase(1);
  EXPECT_EQ(findFree(s, store)->str(), "fd00:10:244:1::2712");
  EXPECT_LE(store.lookups, 10001U);
}

TEST(Exhaustion, Slash30HasOneUsableAddress) {
  FakeStore store;
  const std::vector<RangeSet> sets{set(0, "10.244.1.0/30")};
  auto first = allocate(sets, {"a", "eth0"}, {}, store);
  EXPECT_EQ(first.at(0).address.str(), "10.244.1.2");
  EXPECT_EQ(codeOf([&] { allocate(sets, {"b", "eth0"}, {}, store); }), cni::Code::RangeExhausted);
  EXPECT_EQ(messageOf([&] {
              allocate(sets, {"b", "eth0"}, {}, store);
            }),
            "no free IPv4 address left in 10.244.1.0/30 (1 allocated of 1 usable)");
}

TEST(Exhaustion, Slash126HasTwo) {
  FakeStore store;
  const std::vector<RangeSet> sets{set(0, "fd00::/126")};
  allocate(sets, {"a", "eth0"}, {}, store);
  allocate(sets, {"b", "eth0"}, {}, store);
  EXPECT_EQ(messageOf([&] {
              allocate(sets, {"c", "eth0"}, {}, store);
            }),
            "no free IPv6 address left in fd00::/126 (2 allocated of 2 usable)");
}

TEST(Allocate, OneAddressPerSetInSetOrder) {
  FakeStore store;
  const std::vector<RangeSet> sets{set(1, "fd00::/64"), set(0, "10.0.0.0/24")};
  auto got = allocate(sets, kPod, {}, store);
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].address.str(), "fd00::2");
  EXPECT_EQ(got[1].address.str(), "10.0.0.2");
  EXPECT_TRUE(got[0].fresh && got[1].fresh);
  EXPECT_EQ(store.last.at(1).str(), "fd00::2");
  EXPECT_EQ(store.last.at(0).str(), "10.0.0.2");
  EXPECT_EQ(store.commits, 0);  // the caller commits
}

TEST(Allocate, IsIdempotentForOneAttachment) {
  FakeStore store;
  const std::vector<RangeSet> sets{set(0, "10.0.0.0/24"), set(1, "fd00::/64")};
  auto first = allocate(sets, kPod, {}, store);
  auto again = allocate(sets, kPod, {}, store);
  ASSERT_EQ(again.size(), 2U);
  EXPECT_EQ(again[0].address, first[0].address);
  EXPECT_EQ(again[1].address, first[1].address);
  EXPECT_FALSE(again[0].fresh || again[1].fresh);
  EXPECT_EQ(store.held.size(), 2U);
  // Another interface of the same container is another attachment.
  auto eth1 = allocate(sets, {"pod1", "eth1"}, {}, store);
  EXPECT_NE(eth1[0].address, first[0].address);
}

TEST(Allocate, CompletesAnAttachmentThatHoldsOnlyOneFamily) {
  FakeStore store;
  store.hold("10.0.0.7", "pod1");
  const std::vector<RangeSet> sets{set(0, "10.0.0.0/24"), set(1, "fd00::/64")};
  auto got = allocate(sets, kPod, {}, store);
  EXPECT_EQ(got[0].address.str(), "10.0.0.7");
  EXPECT_FALSE(got[0].fresh);
  EXPECT_EQ(got[1].address.str(), "fd00::2");
}

TEST(Allocate, HonoursALegacyIdOnlyRecord) {
  FakeStore store;
  store.held[A("10.0.0.9")] = Owner{"pod1", ""};
  const std::vector<RangeSet> sets{set(0, "10.0.0.0/24")};
  auto got = allocate(sets, kPod, {}, store);
  EXPECT_EQ(got[0].address.str(), "10.0.0.9");
  EXPECT_EQ(store.held.size(), 1U);
}

TEST(Allocate, AnExhaustedSecondSetLeavesTheStoreUntouched) {
  FakeStore store;
  store.hold("fd00::2", "other");
  store.hold("fd00::3", "other2");
  const std::vector<RangeSet> sets{set(0, "10.0.0.0/24"), set(1, "fd00::/126")};
  const auto before = store.held;
  EXPECT_EQ(codeOf([&] { allocate(sets, kPod, {}, store); }), cni::Code::RangeExhausted);
  EXPECT_EQ(store.held, before);
  EXPECT_TRUE(store.last.empty());
}

TEST(Allocate, AFailedWriteReleasesWhatItReserved) {
  FakeStore store;
  const std::vector<RangeSet> sets{set(0, "10.0.0.0/24"), set(1, "fd00::/64")};
  store.failReserve.insert(A("fd00::2"));
  EXPECT_EQ(codeOf([&] { allocate(sets, kPod, {}, store); }), cni::Code::IoFailure);
  EXPECT_TRUE(store.held.empty());
}

TEST(Allocate, TakesTheNextAddressWhenOneIsStolenUnderIt) {
  FakeStore store;
  const std::vector<RangeSet> sets{set(0, "10.0.0.0/24")};
  store.stolen.insert(A("10.0.0.2"));
  auto got = allocate(sets, kPod, {}, store);
  EXPECT_EQ(got[0].address.str(), "10.0.0.3");
}

TEST(Allocate, RequestedAddresses) {
  FakeStore store;
  const std::vector<RangeSet> sets{set(0, "10.0.0.0/24"), set(1, "fd00::/64")};
  const auto req = assignRequested(sets, {{A("fd00::99"), "runtimeConfig.ips[0]"}});
  auto got = allocate(sets, kPod, req, store);
  EXPECT_EQ(got[0].address.str(), "10.0.0.2");
  EXPECT_EQ(got[1].address.str(), "fd00::99");
  // Asking again for what the attachment holds is fine (podman network reload: DEL + ADD).
  EXPECT_NO_THROW(allocate(sets, kPod, req, store));
  // Another attachment cannot have it.
  EXPECT_EQ(codeOf([&] {
              allocate(sets, {"pod2", "eth0"}, req, store);
            }),
            cni::Code::AlreadyExists);
  EXPECT_EQ(messageOf([&] {
              allocate(sets, {"pod2", "eth0"}, req, store);
            }),
            "requested address fd00::99 is already allocated to pod1/eth0");
  // The attachment cannot switch address without DEL.
  const auto other = assignRequested(sets, {{A("fd00::98"), "args.cni.ips[0]"}});
  EXPECT_EQ(codeOf([&] { allocate(sets, kPod, other, store); }), cni::Code::AlreadyExists);
}

TEST(AssignRequested, Errors) {
  const std::vector<RangeSet> sets{set(0, "10.0.0.0/24", "10.0.0.10", "10.0.0.20"),
                                   set(1, "fd00::/64")};
  auto msg = [&](std::vector<Requested> r) { return messageOf([&] { assignRequested(sets, r); }); };
  EXPECT_EQ(msg({{A("192.168.0.1"), "CNI_ARGS IP"}}),
            "CNI_ARGS IP: requested address 192.168.0.1 is in none of the ranges "
            "(10.0.0.0/24 (10.0.0.10-10.0.0.20); fd00::/64)");
  EXPECT_EQ(msg({{A("10.0.0.5"), "runtimeConfig.ips[0]"}}),
            "runtimeConfig.ips[0]: requested address 10.0.0.5 is in 10.0.0.0/24 but outside its "
            "range 10.0.0.10-10.0.0.20");
  EXPECT_EQ(msg({{A("fd00::1"), "args.cni.ips[1]"}}),
            "args.cni.ips[1]: requested address fd00::1 is the gateway of fd00::/64");
  const std::vector<RangeSet> whole{set(0, "10.0.0.0/29", "10.0.0.0", "10.0.0.7")};
  EXPECT_EQ(messageOf([&] {
              assignRequested(whole, {{A("10.0.0.0"), "x"}});
            }),
            "x: requested address 10.0.0.0 is the network address of 10.0.0.0/29");
  EXPECT_EQ(messageOf([&] {
              assignRequested(whole, {{A("10.0.0.7"), "x"}});
            }),
            "x: requested address 10.0.0.7 is the broadcast address of 10.0.0.0/29");
  EXPECT_NE(msg({{A("fd00::5"), "a"}, {A("fd00::6"), "b"}}).find("fall into the same range"),
            std::string::npos);
  EXPECT_EQ(codeOf([&] {
              assignRequested(sets, {{A("192.168.0.1"), "x"}});
            }),
            cni::Code::InvalidConfig);
  auto ok = assignRequested(sets, {{A("fd00::5"), "a"}, {A("10.0.0.10"), "b"}});
  EXPECT_EQ(ok[0]->str(), "10.0.0.10");
  EXPECT_EQ(ok[1]->str(), "fd00::5");
}

TEST(Release, ReleasesEverythingOfTheAttachmentAndNothingElse) {
  FakeStore store;
  store.hold("10.0.0.2", "pod1");
  store.hold("fd00::2", "pod1");
  store.hold("10.0.0.3", "pod1", "eth1");
  store.hold("10.0.0.4", "pod2");
  auto released = release(kPod, store);
  EXPECT_EQ(released.size(), 2U);
  EXPECT_EQ(store.held.size(), 2U);
  EXPECT_TRUE(release(kPod, store).empty());  // repeated DEL
}

TEST(CollectGarbage, KeepsValidAttachmentsOnly) {
  FakeStore store;
  store.hold("10.0.0.2", "live");
  store.hold("10.0.0.3", "gone");
  store.held[A("10.0.0.4")] = Owner{"live", ""};  // legacy: kept by container ID
  store.held[A("10.0.0.5")] = Owner{"gone", ""};
  store.held[A("10.0.0.6")] = std::nullopt;  // a file naming nobody
  auto r = collectGarbage({{"live", "eth0"}}, store);
  EXPECT_EQ(r.released.size(), 3U);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(store.held.size(), 2U);
  EXPECT_EQ(collectGarbage({}, store).released.size(), 2U);
  EXPECT_TRUE(store.held.empty());
}

TEST(Status, FirstExhausted) {
  FakeStore store;
  const std::vector<RangeSet> sets{set(0, "10.0.0.0/30"), set(1, "fd00::/64")};
  EXPECT_EQ(firstExhausted(sets, store), nullptr);
  store.hold("10.0.0.2", "x");
  EXPECT_EQ(firstExhausted(sets, store), &sets[0]);
}

}  // namespace
}  // namespace dualstack::ipam

// Results: parsing any supported version, serialising to each, and errors that name the field.
#include "dualstack/cni/result.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"

namespace dualstack::cni {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

ip::Prefix pfx(const char* text) {
  auto p = ip::Prefix::parse(text);
  EXPECT_TRUE(p.has_value()) << text;
  return p.value_or(ip::Prefix());
}
ip::Address addr(const char* text) {
  auto a = ip::Address::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(ip::Address());
}

// A dual-stack result as the main plugin returns it, with every 1.1.0 field set.
Result fullResult() {
  Result r;
  r.interfaces = {{"veth1234", "aa:bb:cc:00:00:01", 1450, ""},
                  {"eth0", "aa:bb:cc:00:00:02", 1450, "/var/run/netns/pod1"}};
  r.ips = {{pfx("10.244.1.5/24"), addr("10.244.1.1"), 1},
           {pfx("fd00:10:244:1::5/64"), addr("fe80::1"), 1}};
  Route v4{pfx("0.0.0.0/0"), addr("10.244.1.1"), 1400, 1360, 100, 254, 0};
  Route v6{pfx("::/0"), addr("fe80::1"), std::nullopt, std::nullopt, 1024, std::nullopt, 253};
  Route noGw{pfx("10.96.0.0/12"), std::nullopt, {}, {}, {}, {}, {}};
  r.routes = {v4, v6, noGw};
  r.dns = {{"nameservers", json::array({"10.96.0.10"})},
           {"search", json::array({"default.svc.cluster.local"})}};
  return r;
}

// What survives a conversion to a pre-1.1.0 version.
Result withoutV11Fields(Result r) {
  for (auto& i : r.interfaces) i.mtu.reset();
  for (auto& rt : r.routes) {
    rt.mtu.reset();
    rt.advmss.reset();
    rt.priority.reset();
    rt.table.reset();
    rt.scope.reset();
  }
  return r;
}

Error parseError(const json& j, std::string_view where = "result") {
  try {
    Result::fromJson(j, where);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "Result::fromJson accepted " << j.dump();
  return Error(Code::Internal, "<no error>");
}

TEST(ResultToJson, V110Exact) {
  const json expected = json::parse(R"({
    "cniVersion": "1.1.0",
    "interfaces": [
      {"name": "veth1234", "mac": "aa:bb:cc:00:00:01", "mtu": 1450},
      {"name": "eth0", "mac": "aa:bb:cc:00:00:02", "mtu": 1450, "sandbox": "/var/run/netns/pod1"}
    ],
    "ips": [
      {"address": "10.244.1.5/24", "gateway": "10.244.1.1", "interface": 1},
      {"address": "fd00:10:244:1::5/64", "gateway": "fe80::1", "interface": 1}
    ],
    "routes": [
      {"dst": "0.0.0.0/0", "gw": "10.244.1.1", "mtu": 1400, "advmss": 1360, "priority": 100,
       "table": 254, "scope": 0},
      {"dst": "::/0", "gw": "fe80::1", "priority": 1024, "scope": 253},
      {"dst": "10.96.0.0/12"}
    ],
    "dns": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"]}
  })");
  EXPECT_EQ(fullResult().toJson("1.1.0"), expected);
}

TEST(ResultToJson, V100HasNoPerIpVersionAndNo11Fields) {
  const json j = fullResult().toJson("1.0.0");
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  for (const auto& i : j["interfaces"]) EXPECT_FALSE(i.contains("mtu")) << i.dump();
  for (const auto& c : j["ips"]) {
    EXPECT_FALSE(c.contains("version")) << c.dump();
    EXPECT_TRUE(c.contains("interface")) << c.dump();
  }
  for (const auto& rt : j["routes"]) {
    for (const char* k : {"mtu", "advmss", "priority", "table", "scope"}) {
      EXPECT_FALSE(rt.contains(k)) << k << " in " << rt.dump();
    }
  }
  EXPECT_EQ(j["routes"][0], json::parse(R"({"dst":"0.0.0.0/0","gw":"10.244.1.1"})"));
}

TEST(ResultToJson, PreV1HasPerIpVersion) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0"}) {
    const json j = fullResult().toJson(v);
    EXPECT_EQ(j["cniVersion"], v);
    ASSERT_EQ(j["ips"].size(), 2u) << v;
    EXPECT_EQ(j["ips"][0]["version"], "4") << v;
    EXPECT_EQ(j["ips"][1]["version"], "6") << v;
    EXPECT_EQ(j["ips"][0]["interface"], 1) << v;
    for (const auto& i : j["interfaces"]) EXPECT_FALSE(i.contains("mtu")) << v;
    for (const auto& rt : j["routes"]) {
      for (const char* k : {"mtu", "advmss", "priority", "table", "scope"}) {
        EXPECT_FALSE(rt.contains(k)) << v << " " << k;
      }
    }
  }
}

TEST(ResultRoundTrip, EveryVersion) {
  const Result full = fullResult();
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    const json j = full.toJson(v);
    const Result back = Result::fromJson(j);
    const bool v11 = std::string(v) == "1.1.0";
    EXPECT_EQ(back.interfaces, (v11 ? full : withoutV11Fields(full)).interfaces) << v;
    EXPECT_EQ(back.ips, full.ips) << v;
    EXPECT_EQ(back.routes, (v11 ? full : withoutV11Fields(full)).routes) << v;
    EXPECT_EQ(back.dns, full.dns) << v;
    // Serialising the parsed value again is a fixed point.
    EXPECT_EQ(back.toJson(v), j) << v;
  }
}

TEST(ResultRoundTrip, ConvertBetweenVersions) {
  // A 0.4.0 prevResult re-emitted as 1.0.0 and back (what a chain with mixed plugins does).
  const json old = json::parse(R"({
    "cniVersion": "0.4.0",
    "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
    "ips": [{"version": "4", "address": "192.168.0.2/24", "gateway": "192.168.0.1", "interface": 0},
            {"version": "6", "address": "2001:db8::2/64", "interface": 0}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {}
  })");
  const json v1 = Result::fromJson(old).toJson("1.0.0");
  EXPECT_FALSE(v1["ips"][0].contains("version"));
  EXPECT_FALSE(v1["ips"][1].contains("gateway"));
  EXPECT_EQ(Result::fromJson(v1).toJson("0.4.0"), old);
}

TEST(ResultToJson, HostBitsAndCanonicalText) {
  Result r;
  r.ips = {{pfx("10.0.0.7/8"), std::nullopt, std::nullopt},
           {pfx("2001:0db8:0000:0000:0000:0000:0000:0007/48"), std::nullopt, std::nullopt}};
  const json j = r.toJson("1.0.0");
  EXPECT_EQ(j["ips"][0]["address"], "10.0.0.7/8") << "host bits must be kept";
  EXPECT_EQ(j["ips"][1]["address"], "2001:db8::7/48");
  EXPECT_FALSE(j["ips"][0].contains("gateway"));
  EXPECT_FALSE(j["ips"][0].contains("interface"));
}

TEST(ResultToJson, IpamResultHasNoInterfaces) {
  Result r;
  r.ips = {{pfx("10.0.0.7/24"), addr("10.0.0.1"), std::nullopt}};
  const json j = r.toJson("1.1.0");
  EXPECT_FALSE(j.contains("interfaces"));
  EXPECT_FALSE(j.contains("routes"));
  EXPECT_FALSE(j["ips"][0].contains("interface"));
  EXPECT_EQ(j["dns"], json::object());
}

TEST(ResultToJson, EmptyResult) {
  EXPECT_EQ(Result().toJson("1.0.0"), json::parse(R"({"cniVersion":"1.0.0","dns":{}})"));
}

TEST(ResultFromJson, MinimalAndUnknownFieldsTolerated) {
  const Result r = Result::fromJson(json::parse(R"({"cniVersion":"1.0.0","extra":[1,2]})"));
  EXPECT_TRUE(r.interfaces.empty());
  EXPECT_TRUE(r.ips.empty());
  EXPECT_TRUE(r.routes.empty());
  EXPECT_EQ(r.dns, json::object());
}

TEST(ResultFromJson, KeepsOptionalFieldsAbsentWhenAbsent) {
  const Result r = Result::fromJson(json::parse(R"({
    "interfaces": [{"name": "eth0"}],
    "ips": [{"address": "10.0.0.2/24"}],
    "routes": [{"dst": "10.0.0.0/8"}]
  })"));
  EXPECT_EQ(r.interfaces[0], (Interface{"eth0", "", std::nullopt, ""}));
  EXPECT_FALSE(r.ips[0].gateway);
  EXPECT_FALSE(r.ips[0].interface);
  EXPECT_FALSE(r.routes[0].gw);
  EXPECT_FALSE(r.routes[0].mtu);
  EXPECT_FALSE(r.routes[0].scope);
}

TEST(ResultFromJson, NotAnObject) {
  const Error e = parseError(json::array());
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_THAT(e.msg(), HasSubstr("result"));
  EXPECT_THAT(e.msg(), HasSubstr("an array"));
}

struct BadCase {
  const char* text;
  const char* field;
  const char* detail;
};

TEST(ResultFromJson, ErrorsNameTheField) {
  const BadCase cases[] = {
      {R"({"ips":[{"address":"10.0.0.300/24"}]})", "ips[0].address", "10.0.0.300/24"},
      {R"({"ips":[{"address":"10.0.0.3"}]})", "ips[0].address", "CIDR"},
      {R"({"ips":[{"address":"10.0.0.3/33"}]})", "ips[0].address", "CIDR"},
      {R"({"ips":[{"gateway":"10.0.0.1"}]})", "ips[0].address", "missing"},
      {R"({"ips":[{"address":7}]})", "ips[0].address", "string"},
      {R"({"ips":[{"address":"10.0.0.3/24"},{"address":"10.0.0.4/24","gateway":"10.0.0.x"}]})",
       "ips[1].gateway", "not an IP address"},
      {R"({"ips":[{"address":"10.0.0.3/24","gateway":"fe80::1"}]})", "ips[0].gateway", "family"},
      {R"({"ips":[{"address":"fd00::3/64","gateway":"10.0.0.1"}]})", "ips[0].gateway", "family"},
      {R"({"ips":[{"address":"10.0.0.3/24","interface":0}]})", "ips[0].interface", "index 0"},
      {R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.3/24","interface":1}]})",
       "ips[0].interface", "index 1"},
      {R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.3/24","interface":-1}]})",
       "ips[0].interface", "index -1"},
      {R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.3/24","interface":"0"}]})",
       "ips[0].interface", "integer"},
      {R"({"ips":[{"version":"6","address":"10.0.0.3/24"}]})", "ips[0].version", "family"},
      {R"({"ips":[{"version":"4","address":"fd00::3/64"}]})", "ips[0].version", "family"},
      {R"({"ips":[{"version":"ipv4","address":"10.0.0.3/24"}]})", "ips[0].version", "family"},
      {R"({"ips":[{"version":4,"address":"10.0.0.3/24"}]})", "ips[0].version", "string"},
      {R"({"ips":["10.0.0.3/24"]})", "ips[0]", "object"},
      {R"({"ips":{"address":"10.0.0.3/24"}})", "ips", "array"},
      {R"({"interfaces":[{"name":"eth0","mtu":"1500"}]})", "interfaces[0].mtu", "integer"},
      {R"({"interfaces":[{"name":"eth0","mtu":1.5}]})", "interfaces[0].mtu", "integer"},
      {R"({"interfaces":[{"name":"eth0","mtu":4294967296}]})", "interfaces[0].mtu", "range"},
      {R"({"interfaces":[{"mac":"aa:bb:cc:dd:ee:ff"}]})", "interfaces[0].name", "missing"},
      {R"({"interfaces":[{"name":"eth0","sandbox":5}]})", "interfaces[0].sandbox", "string"},
      {R"({"routes":[{"dst":"0.0.0.0/0"},{"gw":"10.0.0.1"}]})", "routes[1].dst", "missing"},
      {R"({"routes":[{"dst":"0.0.0.0/0","gw":"nope"}]})", "routes[0].gw", "not an IP address"},
      {R"({"routes":[{"dst":"0.0.0.0/0","advmss":"x"}]})", "routes[0].advmss", "integer"},
      {R"({"routes":[{"dst":"0.0.0.0/0","table":true}]})", "routes[0].table", "integer"},
      {R"({"routes":[{"dst":"::/0","priority":-9999999999}]})", "routes[0].priority", "range"},
      {R"({"dns":[]})", "dns", "object"},
  };
  for (const auto& c : cases) {
    const Error e = parseError(json::parse(c.text));
    EXPECT_EQ(e.code(), Code::DecodeFailure) << c.text;
    EXPECT_THAT(e.msg(), HasSubstr(c.field)) << c.text;
    EXPECT_THAT(e.msg(), HasSubstr(c.detail)) << c.text;
  }
}

TEST(ResultFromJson, WhereIsPrefixed) {
  const Error e = parseError(json::parse(R"({"ips":[{"address":"bogus"}]})"), "prevResult");
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_THAT(e.msg(), HasSubstr("prevResult: ips[0].address"));

  const Error notObject = parseError(json(5), "ipam result");
  EXPECT_THAT(notObject.msg(), HasSubstr("ipam result"));
}

TEST(ResultFromJson, IpsMayPrecedeInterfacesInTheText) {
  // JSON objects are unordered; an index check must not depend on member order.
  const Result r = Result::fromJson(json::parse(
      R"({"ips":[{"address":"10.0.0.3/24","interface":0}],"interfaces":[{"name":"eth0"}]})"));
  ASSERT_EQ(r.ips.size(), 1u);
  EXPECT_EQ(r.ips[0].interface, 0);
}

TEST(ResultSerialise, OneLineAsToJsonWithTheAddressesForTheLog) {
  const Result r = fullResult();
  for (const char* v : {"0.3.1", "1.0.0", "1.1.0"}) {
    const SerialisedResult out = r.serialise(v);
    ASSERT_FALSE(out.text.empty());
    EXPECT_EQ(out.text.back(), '\n') << v;
    EXPECT_EQ(out.text.find('\n'), out.text.size() - 1) << v;
    EXPECT_EQ(json::parse(out.text), r.toJson(v)) << v;
    EXPECT_EQ(out.summary, "10.244.1.5/24 fd00:10:244:1::5/64") << v;
  }
}

TEST(ResultSerialise, AStringThatIsNotUtf8IsACniErrorNotAJsonException) {
  Result r = fullResult();
  r.interfaces[1].name = "eth\xff";
  try {
    r.serialise("1.0.0");
    ADD_FAILURE() << "serialised a string that is not UTF-8";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::Internal);
    EXPECT_THAT(e.msg(), HasSubstr("cannot print the result"));
  }
}

}  // namespace
}  // namespace dualstack::cni

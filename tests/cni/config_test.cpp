// Network config parsing: syntax, version gates per verb, name rules, field types, GC lists.
#include "dualstack/cni/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"
#include "support/support.hpp"

namespace dualstack::cni {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kMinimal = R"({"cniVersion":"1.0.0","name":"net1","type":"dualstack"})";

json base(const std::string& version = "1.0.0") {
  return {{"cniVersion", version}, {"name", "net1"}, {"type", "dualstack"}};
}

Error confError(const std::string& text, Command command = Command::Add) {
  try {
    parseNetConf(text, command);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "parseNetConf accepted " << text.substr(0, 200);
  return Error(Code::Internal, "<no error>");
}

Error confError(const json& j, Command command = Command::Add) {
  return confError(j.dump(), command);
}

TEST(ParseNetConf, Minimal) {
  const NetConf c = parseNetConf(kMinimal, Command::Add);
  EXPECT_EQ(c.cniVersion, "1.0.0");
  EXPECT_EQ(c.name, "net1");
  EXPECT_EQ(c.type, "dualstack");
  EXPECT_TRUE(c.ipam().is_null());
  EXPECT_TRUE(c.prevResult().is_null());
  EXPECT_EQ(c.runtimeConfig(), json::object());
  EXPECT_EQ(c.args(), json::object());
  EXPECT_TRUE(c.validAttachments.empty());
}

TEST(ParseNetConf, RawIsKeptVerbatimIncludingUnknownFields) {
  json j = base("1.1.0");
  j["ipam"] = {{"type", "dualstack-ipam"},
               {"ranges", json::array({json::array({{{"subnet", "10.0.0.0/24"}}})})}};
  j["mtu"] = 1450;
  j["someVendorThing"] = {{"nested", json::array({1, 2.5, "x", nullptr, true})}};
  j["runtimeConfig"] = {{"portMappings", json::array()}};
  j["args"] = {{"cni", {{"ips", json::array({"10.0.0.5"})}}}};
  const NetConf c = parseNetConf(j.dump(), Command::Add);
  EXPECT_EQ(c.raw, j);
  EXPECT_EQ(c.ipam(), j["ipam"]);
  EXPECT_EQ(c.runtimeConfig(), j["runtimeConfig"]);
  EXPECT_EQ(c.args(), j["args"]);
}

TEST(ParseNetConf, PartsAreReadInPlaceNotCopied) {
  json j = base();
  j["ipam"] = {{"type", "dualstack-ipam"}};
  j["runtimeConfig"] = {{"ips", json::array({"10.0.0.5"})}};
  j["args"] = {{"cni", json::object()}};
  j["prevResult"] = {{"cniVersion", "1.0.0"}};
  NetConf c = parseNetConf(j.dump(), Command::Add);
  EXPECT_EQ(&c.ipam(), &c.raw["ipam"]);
  EXPECT_EQ(&c.runtimeConfig(), &c.raw["runtimeConfig"]);
  EXPECT_EQ(&c.args(), &c.raw["args"]);
  EXPECT_EQ(&c.prevResult(), &c.raw["prevResult"]);
  NetConf moved = std::move(c);
  EXPECT_EQ(&moved.ipam(), &moved.raw["ipam"]);
}

// Valid JSON nested 100,000 levels deep is about 200 KB, well under the stdin limit; copying it
// out of the parsed tree used to overflow the stack. Wherever it is, it is a decode failure.
TEST(ParseNetConf, DeepNestingAnywhereIsDecodeFailure) {
  using dualstack::testing::nestedJson;
  for (const char* where : {"ipam", "runtimeConfig", "args", "prevResult", "someVendorThing"}) {
    for (const bool objects : {false, true}) {
      json j = base();
      j[where] = json::object();
      std::string text = j.dump();
      const std::string marker = "\"" + std::string(where) + "\":{}";
      text.replace(text.find(marker), marker.size(),
                   "\"" + std::string(where) + "\":{\"x\":" + nestedJson(100000, objects) + "}");
      ASSERT_LT(text.size(), kMaxConfigBytes);
      const Error e = confError(text);
      EXPECT_EQ(e.code(), Code::DecodeFailure) << where;
      EXPECT_THAT(e.msg(), HasSubstr("nested deeper than 128")) << where;
    }
  }
  json j = base();
  j["ipam"] = {{"node", {{"podCIDRs", json::array()}}}};
  std::string text = j.dump();
  text.replace(text.find("[]"), 2, nestedJson(100000));
  EXPECT_EQ(confError(text).code(), Code::DecodeFailure);
}

TEST(ParseNetConf, NestingAtTheLimitIsAccepted) {
  json j = base();
  j["args"] = json::object();
  std::string text = j.dump();
  // The config object is level 1, args level 2, so 126 more levels fit.
  text.replace(text.find("\"args\":{}"), 9,
               "\"args\":{\"x\":" + dualstack::testing::nestedJson(126) + "}");
  const NetConf c = parseNetConf(text, Command::Add);
  EXPECT_TRUE(c.args()["x"].is_array());
  text.replace(text.find("[0]"), 3, "[[0]]");
  EXPECT_EQ(confError(text).code(), Code::DecodeFailure);
}

TEST(ParseNetConf, TypeIsOptional) {
  json j = base();
  j.erase("type");
  EXPECT_EQ(parseNetConf(j.dump(), Command::Add).type, "");
}

TEST(ParseNetConf, MalformedJsonIsDecodeFailure) {
  for (const std::string& bad : std::vector<std::string>{
           std::string(""), std::string("   "), std::string("{"),
           kMinimal.substr(0, kMinimal.size() - 1), kMinimal.substr(0, 20),
           std::string(R"({"cniVersion":"1.0.0",})"), std::string(R"({'cniVersion':'1.0.0'})"),
           kMinimal + "garbage", std::string("\xff\xfe{}")}) {
    const Error e = confError(bad);
    EXPECT_EQ(e.code(), Code::DecodeFailure) << bad;
    EXPECT_THAT(e.msg(), HasSubstr("not valid JSON")) << bad;
  }
}

TEST(ParseNetConf, NonObjectIsDecodeFailure) {
  for (const char* bad : {"[]", R"(["cniVersion","1.0.0"])", "42", R"("net1")", "null", "true"}) {
    const Error e = confError(std::string(bad));
    EXPECT_EQ(e.code(), Code::DecodeFailure) << bad;
    EXPECT_THAT(e.msg(), HasSubstr("JSON object")) << bad;
  }
}

TEST(ParseNetConf, OversizedConfigIsRejected) {
  json j = base();
  j["padding"] = std::string(kMaxConfigBytes, 'x');
  const Error e = confError(j);
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_THAT(e.msg(), HasSubstr("larger than"));
}

TEST(ParseNetConf, MissingCniVersionIsIncompatibleVersion) {
  json j = base();
  j.erase("cniVersion");
  const Error e = confError(j);
  EXPECT_EQ(e.code(), Code::IncompatibleVersion);
  EXPECT_THAT(e.msg(), HasSubstr("cniVersion"));
  EXPECT_THAT(e.msg(), HasSubstr("1.1.0")) << "should list what is supported";

  j["cniVersion"] = nullptr;
  EXPECT_EQ(confError(j).code(), Code::IncompatibleVersion);
}

TEST(ParseNetConf, UnsupportedCniVersionIsIncompatibleVersion) {
  for (const char* v : {"0.1.0", "0.2.0", "1.2.0", "2.0.0", "1.0", "", "latest"}) {
    const Error e = confError(base(v));
    EXPECT_EQ(e.code(), Code::IncompatibleVersion) << v;
    EXPECT_THAT(e.msg(), HasSubstr("cniVersion")) << v;
    EXPECT_THAT(e.msg(), HasSubstr("0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0")) << v;
  }
}

TEST(ParseNetConf, NonStringCniVersionIsRejectedNamingTheField) {
  json j = base();
  j["cniVersion"] = 1.0;
  const Error e = confError(j);
  EXPECT_NE(e.code(), Code::Internal);
  EXPECT_THAT(e.msg(), HasSubstr("cniVersion"));
}

TEST(ParseNetConf, EveryVersionAcceptsAddAndDel) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    EXPECT_EQ(parseNetConf(base(v).dump(), Command::Add).cniVersion, v);
    EXPECT_EQ(parseNetConf(base(v).dump(), Command::Del).cniVersion, v);
  }
}

TEST(ParseNetConf, CheckNeedsAtLeast040) {
  for (const char* v : {"0.3.0", "0.3.1"}) {
    const Error e = confError(base(v), Command::Check);
    EXPECT_EQ(e.code(), Code::IncompatibleVersion) << v;
    EXPECT_THAT(e.msg(), HasSubstr("CHECK")) << v;
    EXPECT_THAT(e.msg(), HasSubstr(v)) << v;
  }
  for (const char* v : {"0.4.0", "1.0.0", "1.1.0"}) {
    EXPECT_NO_THROW(parseNetConf(base(v).dump(), Command::Check)) << v;
  }
}

TEST(ParseNetConf, GcAndStatusNeedAtLeast110) {
  for (Command cmd : {Command::Gc, Command::Status}) {
    for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0"}) {
      const Error e = confError(base(v), cmd);
      EXPECT_EQ(e.code(), Code::IncompatibleVersion) << commandName(cmd) << " " << v;
      EXPECT_THAT(e.msg(), HasSubstr(std::string(commandName(cmd))));
    }
    EXPECT_NO_THROW(parseNetConf(base("1.1.0").dump(), cmd)) << commandName(cmd);
  }
}

TEST(ParseNetConf, VersionGateComesBeforeOtherValidation) {
  // An old config with a bad name asked to CHECK: the version problem is what to report.
  json j = base("0.3.1");
  j["name"] = "../x";
  EXPECT_EQ(confError(j, Command::Check).code(), Code::IncompatibleVersion);
}

TEST(ParseNetConf, NameMissingIsInvalidConfig) {
  json j = base();
  j.erase("name");
  Error e = confError(j);
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("name"));

  j["name"] = 42;
  e = confError(j);
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("name"));
  EXPECT_THAT(e.msg(), HasSubstr("string"));
}

TEST(ParseNetConf, InvalidNameIsInvalidConfig) {
  for (const std::string& bad : std::vector<std::string>{
           std::string(""), std::string("../x"), std::string("a/b"), std::string(".."),
           std::string("/etc"), std::string("-net"), std::string("net 1"), std::string("net\n1"),
           std::string("net\x01"), std::string("net:1"), std::string(65, 'n')}) {
    json j = base();
    j["name"] = bad;
    const Error e = confError(j);
    EXPECT_EQ(e.code(), Code::InvalidConfig) << bad;
    EXPECT_THAT(e.msg(), HasSubstr("name")) << bad;
    EXPECT_THAT(e.msg(), HasSubstr("directory")) << bad;
  }
}

TEST(ParseNetConf, LongestNameIsAccepted) {
  json j = base();
  j["name"] = std::string(64, 'n');
  EXPECT_EQ(parseNetConf(j.dump(), Command::Add).name, std::string(64, 'n'));
}

TEST(ParseNetConf, ControlCharactersInNameAreNotEchoedRaw) {
  json j = base();
  j["name"] = "evil\n\x1b[31mred";
  const Error e = confError(j);
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_EQ(e.msg().find('\n'), std::string::npos) << e.msg();
  EXPECT_EQ(e.msg().find('\x1b'), std::string::npos) << e.msg();
}

TEST(ParseNetConf, WrongTypesNameTheField) {
  struct Case {
    const char* field;
    json value;
  };
  const Case cases[] = {
      {"type", 5},
      {"ipam", "dualstack-ipam"},
      {"ipam", json::array()},
      {"runtimeConfig", json::array()},
      {"runtimeConfig", "x"},
      {"args", 1},
      {"args", json::array({"K8S_POD_NAME"})},
  };
  for (const auto& c : cases) {
    json j = base();
    j[c.field] = c.value;
    const Error e = confError(j);
    EXPECT_EQ(e.code(), Code::InvalidConfig) << c.field << "=" << c.value.dump();
    EXPECT_THAT(e.msg(), HasSubstr(c.field)) << c.value.dump();
    EXPECT_THAT(e.msg(), HasSubstr("expected")) << c.value.dump();
  }
}

TEST(ParseNetConf, NullOptionalFieldsCountAsAbsent) {
  json j = base();
  j["ipam"] = nullptr;
  j["runtimeConfig"] = nullptr;
  j["args"] = nullptr;
  j["prevResult"] = nullptr;
  const NetConf c = parseNetConf(j.dump(), Command::Add);
  EXPECT_TRUE(c.ipam().is_null());
  EXPECT_EQ(c.runtimeConfig(), json::object());
  EXPECT_EQ(c.args(), json::object());
  EXPECT_TRUE(c.prevResult().is_null());
}

TEST(ParseNetConf, ValidPrevResultIsKept) {
  json j = base();
  j["prevResult"] = {
      {"cniVersion", "1.0.0"},
      {"interfaces", json::array({{{"name", "eth0"}, {"sandbox", "/var/run/netns/x"}}})},
      {"ips", json::array({{{"address", "10.0.0.5/24"}, {"interface", 0}}})},
      {"dns", json::object()}};
  const NetConf c = parseNetConf(j.dump(), Command::Del);
  EXPECT_EQ(c.prevResult(), j["prevResult"]);
}

TEST(ParseNetConf, MalformedPrevResultIsDecodeFailure) {
  struct Case {
    json prev;
    const char* mentions;
  };
  const Case cases[] = {
      {"a string", "prevResult"},
      {json::array(), "prevResult"},
      {{{"ips", json::array({{{"address", "10.0.0.300/24"}}})}}, "ips[0].address"},
      {{{"ips", json::array({{{"address", "10.0.0.5/24"}, {"interface", 3}}})}},
       "ips[0].interface"},
      {{{"ips", "10.0.0.5/24"}}, "ips"},
      {{{"routes", json::array({{{"dst", "nope"}}})}}, "routes[0].dst"},
      {{{"interfaces", json::array({{{"mac", "aa:bb:cc:dd:ee:ff"}}})}}, "interfaces[0].name"},
  };
  for (const auto& c : cases) {
    json j = base();
    j["prevResult"] = c.prev;
    const Error e = confError(j);
    EXPECT_EQ(e.code(), Code::DecodeFailure) << c.prev.dump();
    EXPECT_THAT(e.msg(), HasSubstr("prevResult")) << c.prev.dump();
    EXPECT_THAT(e.msg(), HasSubstr(c.mentions)) << c.prev.dump();
  }
}

TEST(ParseNetConf, GcReadsValidAttachments) {
  json j = base("1.1.0");
  j["cni.dev/valid-attachments"] = json::array(
      {{{"containerID", "c1"}, {"ifname", "eth0"}}, {{"containerID", "c2"}, {"ifname", "net1"}}});
  const NetConf c = parseNetConf(j.dump(), Command::Gc);
  ASSERT_EQ(c.validAttachments.size(), 2u);
  EXPECT_EQ(c.validAttachments[0], (Attachment{"c1", "eth0"}));
  EXPECT_EQ(c.validAttachments[1], (Attachment{"c2", "net1"}));
}

TEST(ParseNetConf, GcReadsTheOlderAttachmentsKey) {
  json j = base("1.1.0");
  j["cni.dev/attachments"] = json::array({{{"containerID", "old1"}, {"ifname", "eth0"}}});
  const NetConf c = parseNetConf(j.dump(), Command::Gc);
  ASSERT_EQ(c.validAttachments.size(), 1u);
  EXPECT_EQ(c.validAttachments[0], (Attachment{"old1", "eth0"}));
}

TEST(ParseNetConf, GcTakesBothKeysWhenTheyAgree) {
  // libcni 1.2 sends the same list under both names.
  json j = base("1.1.0");
  j["cni.dev/valid-attachments"] = json::array(
      {{{"containerID", "c1"}, {"ifname", "eth0"}}, {{"containerID", "c2"}, {"ifname", "eth0"}}});
  j["cni.dev/attachments"] = json::array(
      {{{"containerID", "c2"}, {"ifname", "eth0"}}, {{"containerID", "c1"}, {"ifname", "eth0"}}});
  const NetConf c = parseNetConf(j.dump(), Command::Gc);
  EXPECT_EQ(c.validAttachments, (std::vector<Attachment>{{"c1", "eth0"}, {"c2", "eth0"}}));
}

TEST(ParseNetConf, GcRefusesTwoListsThatDisagree) {
  json j = base("1.1.0");
  j["cni.dev/valid-attachments"] = json::array({{{"containerID", "new"}, {"ifname", "eth0"}}});
  j["cni.dev/attachments"] = json::array({{{"containerID", "old"}, {"ifname", "eth0"}}});
  const Error e = confError(j, Command::Gc);
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("list different attachments"));
  // A broken older list is refused even next to a good new one.
  j["cni.dev/attachments"] = json::array({{{"containerID", "new"}}});
  EXPECT_THAT(confError(j, Command::Gc).msg(), HasSubstr("cni.dev/attachments[0].ifname"));
}

// libcni's GCNetworkList without arguments (cnitool's gc) sends no list, and a Go runtime that
// has no valid attachment sends null: both mean that none is valid, as an empty list does.
TEST(ParseNetConf, GcWithoutAListOrWithNullMeansNoneIsValid) {
  json j = base("1.1.0");
  EXPECT_TRUE(parseNetConf(j.dump(), Command::Gc).validAttachments.empty());
  j["cni.dev/valid-attachments"] = nullptr;
  EXPECT_TRUE(parseNetConf(j.dump(), Command::Gc).validAttachments.empty());
  j["cni.dev/attachments"] = nullptr;
  EXPECT_TRUE(parseNetConf(j.dump(), Command::Gc).validAttachments.empty());
  // One null, one list: the list.
  j["cni.dev/attachments"] = json::array({{{"containerID", "c1"}, {"ifname", "eth0"}}});
  EXPECT_EQ(parseNetConf(j.dump(), Command::Gc).validAttachments,
            (std::vector<Attachment>{{"c1", "eth0"}}));
}

// Without a list GC releases everything, so a list under a misspelled key must not pass for
// a missing one.
TEST(ParseNetConf, GcRefusesWhatLooksLikeAMisspelledList) {
  const json list = json::array({{{"containerID", "c1"}, {"ifname", "eth0"}}});
  for (const char* key :
       {"cni.dev/valid-attachment", "cni.dev/validAttachments", "CNI.dev/valid-attachments",
        "cni.dev/something-new", "valid-attachments", "cni_dev/valid_attachments", "Attachments"}) {
    json j = base("1.1.0");
    j[key] = list;
    const Error e = confError(j, Command::Gc);
    EXPECT_EQ(e.code(), Code::InvalidConfig) << key;
    EXPECT_THAT(e.msg(), HasSubstr(std::string("unknown key \"") + key + "\"")) << key;
    EXPECT_THAT(e.msg(), HasSubstr("cni.dev/valid-attachments")) << key;
    // Next to a correct list too: which one the runtime meant is anybody's guess.
    j["cni.dev/valid-attachments"] = list;
    EXPECT_EQ(confError(j, Command::Gc).code(), Code::InvalidConfig) << key;
    // Other verbs ignore unknown keys, as the spec asks.
    EXPECT_NO_THROW(parseNetConf(j.dump(), Command::Del)) << key;
  }
  // A plugin's own unknown keys stay ignored in GC.
  json j = base("1.1.0");
  j["someVendorThing"] = list;
  EXPECT_NO_THROW(parseNetConf(j.dump(), Command::Gc));
}

TEST(ParseNetConf, GcEmptyListIsEmpty) {
  json j = base("1.1.0");
  j["cni.dev/valid-attachments"] = json::array();
  EXPECT_TRUE(parseNetConf(j.dump(), Command::Gc).validAttachments.empty());
}

TEST(ParseNetConf, AttachmentsAreOnlyReadForGc) {
  json j = base("1.1.0");
  j["cni.dev/valid-attachments"] = "not even a list";
  EXPECT_NO_THROW(parseNetConf(j.dump(), Command::Add));
  EXPECT_TRUE(parseNetConf(j.dump(), Command::Add).validAttachments.empty());
}

TEST(ParseNetConf, GcMalformedAttachmentsNameTheEntry) {
  struct Case {
    json list;
    const char* mentions;
  };
  const Case cases[] = {
      {"c1", "cni.dev/valid-attachments"},
      {json::array({"c1"}), "cni.dev/valid-attachments[0]"},
      {json::array({{{"ifname", "eth0"}}}), "cni.dev/valid-attachments[0].containerID"},
      {json::array({{{"containerID", "c1"}, {"ifname", "eth0"}}, {{"containerID", "c2"}}}),
       "cni.dev/valid-attachments[1].ifname"},
      {json::array({{{"containerID", "../c1"}, {"ifname", "eth0"}}}),
       "cni.dev/valid-attachments[0].containerID"},
      {json::array({{{"containerID", "c1"}, {"ifname", "a/b"}}}),
       "cni.dev/valid-attachments[0].ifname"},
      {json::array({{{"containerID", 7}, {"ifname", "eth0"}}}),
       "cni.dev/valid-attachments[0].containerID"},
      // UTF-8 that no CNI_IFNAME can be (printable ASCII only), so no attachment holds it.
      {json::array({{{"containerID", "c1"}, {"ifname", "eth\u00e9"}}}),
       "cni.dev/valid-attachments[0].ifname"},
  };
  for (const auto& c : cases) {
    json j = base("1.1.0");
    j["cni.dev/valid-attachments"] = c.list;
    const Error e = confError(j, Command::Gc);
    EXPECT_EQ(e.code(), Code::InvalidConfig) << c.list.dump();
    EXPECT_THAT(e.msg(), HasSubstr(c.mentions)) << c.list.dump();
  }
  json j = base("1.1.0");
  j["cni.dev/attachments"] = json::array({{{"containerID", "c1"}}});
  const Error e = confError(j, Command::Gc);
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("cni.dev/attachments[0].ifname"));
}

}  // namespace
}  // namespace dualstack::cni

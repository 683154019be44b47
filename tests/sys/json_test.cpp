// The typed JSON field helpers every config parser builds on, and the error type they throw.
#include "dualstack/sys/json.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <string>

#include "dualstack/sys/error.hpp"
#include "support/support.hpp"

namespace dualstack::sys {
namespace {

using ::testing::HasSubstr;

template <typename F>
Error errorOf(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no Error thrown";
  return Error(Code::Internal, "<no error>");
}

TEST(Error, CarriesCodeMessageDetails) {
  const Error e(Code::TryAgainLater, "store locked", "pid 7");
  EXPECT_EQ(e.code(), Code::TryAgainLater);
  EXPECT_EQ(static_cast<int>(e.code()), 11);
  EXPECT_EQ(e.msg(), "store locked");
  EXPECT_STREQ(e.what(), "store locked");
  EXPECT_EQ(e.details(), "pid 7");
}

TEST(Error, ContextPrefixesOutermostFirst) {
  Error e(Code::IoFailure, "Network is unreachable");
  e.context("add route ::/0 via fe80::1").context("eth0");
  EXPECT_EQ(e.msg(), "eth0: add route ::/0 via fe80::1: Network is unreachable");
  EXPECT_STREQ(e.what(), e.msg().c_str());
  EXPECT_EQ(e.code(), Code::IoFailure) << "context must not change the code";
}

TEST(Error, ErrnoError) {
  const Error e = errnoError(Code::IoFailure, "open /var/lib/x", ENOENT);
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_EQ(e.msg(), "open /var/lib/x: No such file or directory");
}

TEST(Error, SpecCodes) {
  EXPECT_EQ(static_cast<int>(Code::IncompatibleVersion), 1);
  EXPECT_EQ(static_cast<int>(Code::UnsupportedField), 2);
  EXPECT_EQ(static_cast<int>(Code::UnknownContainer), 3);
  EXPECT_EQ(static_cast<int>(Code::InvalidEnv), 4);
  EXPECT_EQ(static_cast<int>(Code::IoFailure), 5);
  EXPECT_EQ(static_cast<int>(Code::DecodeFailure), 6);
  EXPECT_EQ(static_cast<int>(Code::InvalidConfig), 7);
  EXPECT_EQ(static_cast<int>(Code::TryAgainLater), 11);
  EXPECT_EQ(static_cast<int>(Code::NotAvailable), 50);
  EXPECT_EQ(static_cast<int>(Code::NotAvailableDegraded), 51);
  EXPECT_GE(static_cast<int>(Code::Internal), 100);
}

TEST(Json, ParseErrorIsDecodeFailureWithoutLibraryPrefix) {
  const Error e = errorOf([] { parseJson(R"({"a":)", "ipam result"); });
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_THAT(e.msg(), HasSubstr("ipam result is not valid JSON"));
  EXPECT_THAT(e.msg(), ::testing::Not(HasSubstr("[json.exception")));
}

// nlohmann reports a number beyond a double's range as out_of_range, not as a parse error.
TEST(Json, NumberOverflowIsDecodeFailure) {
  const Error e = errorOf([] { parseJson(R"({"mtu": 1e999})", "network config"); });
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_THAT(e.msg(), HasSubstr("network config is not valid JSON: number overflow"));
}

// nlohmann copies, compares and dumps trees recursively: parsing refuses what would overflow the
// stack there, at a fixed depth, and frees what it refuses without recursing either.
TEST(Json, NestingUpToTheLimitIsAccepted) {
  using dualstack::testing::nestedJson;
  for (const bool objects : {false, true}) {
    const json j = parseJson(nestedJson(kMaxJsonDepth, objects), "config");
    const json* p = &j;
    std::size_t depth = 0;
    while (p->is_structured()) {
      p = objects ? &(*p)["a"] : &(*p)[0];
      ++depth;
    }
    EXPECT_EQ(depth, kMaxJsonDepth);
    EXPECT_EQ(*p, 0);
    EXPECT_EQ(json(j), j) << "a copy at the limit";
  }
}

TEST(Json, NestingBeyondTheLimitIsDecodeFailure) {
  using dualstack::testing::nestedJson;
  for (const bool objects : {false, true}) {
    // One level too many, and the 200 KB that crashed copying; both with a proper end, so that
    // only the depth is wrong, and 1 MB-deep without one.
    for (const std::size_t depth : {kMaxJsonDepth + 1, std::size_t{100000}}) {
      const Error e = errorOf([&] { parseJson(nestedJson(depth, objects), "network config"); });
      EXPECT_EQ(e.code(), Code::DecodeFailure) << depth;
      EXPECT_EQ(e.msg(), "network config is nested deeper than 128 levels of arrays and objects")
          << depth;
    }
    const std::string open = nestedJson(1000000, objects).substr(0, 1000000 * (objects ? 5 : 1));
    EXPECT_EQ(errorOf([&] { parseJson(open, "x"); }).code(), Code::DecodeFailure);
    EXPECT_EQ(errorOf([&] { parseOrderedJson(nestedJson(100000, objects), "x"); }).code(),
              Code::DecodeFailure);
  }
  // Deep inside an otherwise ordinary config.
  const std::string text = R"({"cniVersion": "1.0.0", "ipam": {"node": {"podCIDRs": )" +
                           dualstack::testing::nestedJson(100000) + "}}}";
  EXPECT_THAT(errorOf([&] { parseJson(text, "network config"); }).msg(),
              HasSubstr("nested deeper than 128"));
}

TEST(Json, ParsedValuesKeepTheirTypesAndTheLastOfRepeatedKeys) {
  const json j = parseJson(
      R"({"u": 18446744073709551615, "i": -5, "f": 1.5, "s": "x\u00e9", "b": true, "n": null,
          "a": [1, [2], {}], "o": {"k": {"k": []}}, "d": 1, "d": 2})",
      "x");
  EXPECT_TRUE(j["u"].is_number_unsigned());
  EXPECT_EQ(j["u"].get<std::uint64_t>(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_TRUE(j["i"].is_number_integer());
  EXPECT_EQ(j["i"], -5);
  EXPECT_TRUE(j["f"].is_number_float());
  EXPECT_EQ(j["s"], "x\xc3\xa9");
  EXPECT_EQ(j["b"], true);
  EXPECT_TRUE(j["n"].is_null());
  EXPECT_EQ(j["a"], json::parse(R"([1, [2], {}])"));
  EXPECT_EQ(j["o"], json::parse(R"({"k": {"k": []}})"));
  EXPECT_EQ(j["d"], 2);
  EXPECT_EQ(j.size(), 9U);
  EXPECT_EQ(parseJson("7", "x"), 7);
  EXPECT_EQ(parseJson(" [] ", "x"), json::array());
  EXPECT_EQ(errorOf([] { parseJson("[] []", "x"); }).code(), Code::DecodeFailure);
  EXPECT_EQ(errorOf([] { parseJson("", "x"); }).code(), Code::DecodeFailure);
}

TEST(Json, OrderedParseKeepsKeyOrder) {
  const auto j = parseOrderedJson(R"({"z": 1, "a": {"y": 2, "b": 3}})", "template");
  EXPECT_EQ(j.dump(), R"({"z":1,"a":{"y":2,"b":3}})");
}

TEST(Json, TopLevelParseLeavesDeeperValuesOut) {
  using dualstack::testing::nestedJson;
  const std::string deep = nestedJson(1000000, true);
  const json j = parseJsonTop(R"({"cniVersion": "1.1.0", "ipam": )" + deep +
                              R"(, "logFile": "/x", "list": [1, 2], "n": 5})");
  EXPECT_EQ(j, json::parse(R"({"cniVersion": "1.1.0", "logFile": "/x", "n": 5})"));
  EXPECT_EQ(parseJsonTop(R"({"a": {"b": {"c": 1}, "d": 2}, "e": 3})", 2),
            json::parse(R"({"a": {"d": 2}, "e": 3})"));
  EXPECT_TRUE(parseJsonTop(deep).is_object());
  EXPECT_TRUE(parseJsonTop(R"({"a": )").is_discarded());
  EXPECT_TRUE(parseJsonTop("").is_discarded());
  EXPECT_TRUE(parseJsonTop(deep.substr(0, 5000)).is_discarded());
}

TEST(Json, FieldPathAndTypeNames) {
  EXPECT_EQ(fieldPath("", "name"), "name");
  EXPECT_EQ(fieldPath("ipam", "dataDir"), "ipam.dataDir");
  EXPECT_EQ(fieldPath("ipam.ranges[0]", "subnet"), "ipam.ranges[0].subnet");
  EXPECT_EQ(typeName(json(nullptr)), "null");
  EXPECT_EQ(typeName(json::object()), "an object");
  EXPECT_EQ(typeName(json::array()), "an array");
  EXPECT_EQ(typeName(json("x")), "a string");
  EXPECT_EQ(typeName(json(true)), "a boolean");
  EXPECT_EQ(typeName(json(1)), "a number");
  EXPECT_EQ(typeName(json(-1)), "a number");
  EXPECT_EQ(typeName(json(1.5)), "a number");
}

TEST(Json, MemberOfNonObjectNamesTheParent) {
  const Error e = errorOf([] { member(json::array(), "x", "ipam"); });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_EQ(e.msg(), "ipam: expected an object, got an array");
  const Error top = errorOf([] { member(json(3), "x", ""); });
  EXPECT_EQ(top.msg(), "config: expected an object, got a number");
}

TEST(Json, MemberAbsentOrNullIsNullptr) {
  const json j = json::parse(R"({"a":null,"b":0})");
  EXPECT_EQ(member(j, "a", ""), nullptr);
  EXPECT_EQ(member(j, "missing", ""), nullptr);
  ASSERT_NE(member(j, "b", ""), nullptr);
  EXPECT_EQ(*member(j, "b", ""), 0);
}

TEST(Json, Strings) {
  const json j = json::parse(R"({"s":"v","n":1})");
  EXPECT_EQ(optString(j, "s", "ipam"), "v");
  EXPECT_EQ(optString(j, "missing", "ipam"), std::nullopt);
  EXPECT_EQ(reqString(j, "s", "ipam"), "v");

  Error e = errorOf([&] { optString(j, "n", "ipam"); });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_EQ(e.msg(), "ipam.n: expected a string, got a number");

  e = errorOf([&] { reqString(j, "missing", "ipam"); });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_EQ(e.msg(), "ipam.missing is missing");

  // The caller picks the code (results use DecodeFailure).
  e = errorOf([&] { reqString(j, "n", "ips[0]", Code::DecodeFailure); });
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_THAT(e.msg(), HasSubstr("ips[0].n"));
}

TEST(Json, Bools) {
  const json j = json::parse(R"({"t":true,"s":"true","n":1})");
  EXPECT_EQ(optBool(j, "t", ""), true);
  EXPECT_EQ(optBool(j, "missing", ""), std::nullopt);
  for (const char* k : {"s", "n"}) {
    const Error e = errorOf([&] { optBool(j, k, "plugin"); });
    EXPECT_EQ(e.code(), Code::InvalidConfig) << k;
    EXPECT_THAT(e.msg(), HasSubstr(std::string("plugin.") + k)) << k;
    EXPECT_THAT(e.msg(), HasSubstr("true or false")) << k;
  }
}

TEST(Json, IntsWithRange) {
  const json j = json::parse(
      R"({"mtu":1500,"neg":-1,"f":1.0,"s":"1500","big":18446744073709551615,"min":68})");
  EXPECT_EQ(optInt(j, "mtu", "", 68, 65535), 1500);
  EXPECT_EQ(optInt(j, "min", "", 68, 65535), 68) << "bounds are inclusive";
  EXPECT_EQ(optInt(j, "missing", "", 68, 65535), std::nullopt);

  Error e = errorOf([&] { optInt(j, "neg", "plugin", 0, 10); });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_EQ(e.msg(), "plugin.neg: -1 is out of range [0, 10]");

  e = errorOf([&] { optInt(j, "mtu", "", 68, 1499); });
  EXPECT_THAT(e.msg(), HasSubstr("mtu: 1500 is out of range"));

  for (const char* k : {"f", "s"}) {
    e = errorOf([&] { optInt(j, k, "plugin", 0, 100000); });
    EXPECT_EQ(e.code(), Code::InvalidConfig) << k;
    EXPECT_THAT(e.msg(), HasSubstr("expected an integer")) << k;
  }

  // A uint64 beyond int64 must not wrap into range, nor be clamped into the widest one.
  e = errorOf([&] { optInt(j, "big", "", 0, std::numeric_limits<std::int64_t>::max() - 1); });
  EXPECT_THAT(e.msg(), HasSubstr("out of range"));
  e = errorOf([&] { optInt(j, "big", "", 0, std::numeric_limits<std::int64_t>::max()); });
  EXPECT_THAT(e.msg(), HasSubstr("out of range"));
  EXPECT_THAT(e.msg(), HasSubstr(j["big"].dump())) << "the value as given";
  e = errorOf([&] { optInt(j, "big", "", 0, 10, Code::DecodeFailure); });
  EXPECT_EQ(e.code(), Code::DecodeFailure);
}

TEST(Json, ArraysAndObjects) {
  const json j = json::parse(R"({"a":[1],"o":{"k":1},"s":"x"})");
  ASSERT_NE(optArray(j, "a", ""), nullptr);
  EXPECT_EQ(optArray(j, "missing", ""), nullptr);
  ASSERT_NE(optObject(j, "o", ""), nullptr);
  EXPECT_EQ(optObject(j, "missing", ""), nullptr);

  Error e = errorOf([&] { optArray(j, "o", "ipam"); });
  EXPECT_EQ(e.msg(), "ipam.o: expected an array, got an object");
  e = errorOf([&] { optObject(j, "s", "ipam", Code::DecodeFailure); });
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_EQ(e.msg(), "ipam.s: expected an object, got a string");
}

}  // namespace
}  // namespace dualstack::sys

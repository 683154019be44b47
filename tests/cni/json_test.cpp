// The error type and the typed JSON field helpers every config parser builds on.
#include "dualstack/cni/json.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <string>

#include "dualstack/cni/error.hpp"

namespace dualstack::cni {
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

  // A uint64 beyond int64 must not wrap into range.
  e = errorOf([&] { optInt(j, "big", "", 0, std::numeric_limits<std::int64_t>::max() - 1); });
  EXPECT_THAT(e.msg(), HasSubstr("out of range"));
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
}  // namespace dualstack::cni

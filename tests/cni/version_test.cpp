// Spec versions: comparison, the supported set, and the VERSION answer.
#include "dualstack/cni/version.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"

namespace dualstack::cni {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(CompareVersions, Ordering) {
  EXPECT_EQ(compareVersions("1.0.0", "1.0.0"), 0);
  EXPECT_EQ(compareVersions("0.3.0", "0.3.1"), -1);
  EXPECT_EQ(compareVersions("0.3.1", "0.3.0"), 1);
  EXPECT_EQ(compareVersions("0.4.0", "1.0.0"), -1);
  EXPECT_EQ(compareVersions("1.1.0", "1.0.0"), 1);
  EXPECT_EQ(compareVersions("0.4.0", "0.3.1"), 1);
  // Numeric, not lexicographic.
  EXPECT_EQ(compareVersions("0.10.0", "0.9.0"), 1);
  EXPECT_EQ(compareVersions("10.0.0", "9.9.9"), 1);
  EXPECT_EQ(compareVersions("1.0.10", "1.0.9"), 1);
}

TEST(CompareVersions, TwoPartVersionMeansPatchZero) {
  EXPECT_EQ(compareVersions("1.0", "1.0.0"), 0);
  EXPECT_EQ(compareVersions("0.4", "0.3.1"), 1);
  EXPECT_EQ(compareVersions("1.1.0", "1.1"), 0);
}

TEST(CompareVersions, MalformedIsDecodeFailure) {
  for (const char* bad : {"", "1", "1.", "1.0.", "1..0", ".1.0", "a.b.c", "1.0.0.0", "1.0.0-rc1",
                          "v1.0.0", "1.0.x", " 1.0.0", "1.0.0 ", "-1.0.0", "99999999999.0.0"}) {
    try {
      compareVersions(bad, "1.0.0");
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::DecodeFailure) << bad;
      EXPECT_THAT(e.msg(), HasSubstr("cniVersion")) << bad;
    }
    // Either side may be the malformed one.
    EXPECT_THROW(compareVersions("1.0.0", bad), Error) << bad;
  }
}

TEST(VersionAtLeast, Boundaries) {
  EXPECT_TRUE(versionAtLeast("0.4.0", "0.4.0"));
  EXPECT_TRUE(versionAtLeast("1.0.0", "0.4.0"));
  EXPECT_FALSE(versionAtLeast("0.3.1", "0.4.0"));
  EXPECT_FALSE(versionAtLeast("1.0.0", "1.1.0"));
  EXPECT_TRUE(versionAtLeast("1.1.0", "1.1.0"));
}

TEST(SupportedVersions, ExactlyTheSpecSet) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    EXPECT_TRUE(isSupportedVersion(v)) << v;
  }
  for (const char* v : {"", "0.1.0", "0.2.0", "1.0", "1.1", "1.2.0", "2.0.0", "0.3.2", "1.0.0 "}) {
    EXPECT_FALSE(isSupportedVersion(v)) << v;
  }
  EXPECT_EQ(kLatestVersion, "1.1.0");
  EXPECT_TRUE(isSupportedVersion(kLatestVersion));
  // The list is ordered oldest first and every entry parses.
  for (std::size_t i = 1; i < kSupportedVersions.size(); ++i) {
    EXPECT_LT(compareVersions(kSupportedVersions[i - 1], kSupportedVersions[i]), 0);
  }
}

TEST(VersionInfo, EchoesASupportedRequest) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    const json info = versionInfo(v);
    EXPECT_EQ(info["cniVersion"], v);
    EXPECT_EQ(info["supportedVersions"],
              json::array({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
    EXPECT_EQ(info.size(), 2u) << info.dump();
  }
}

TEST(VersionInfo, FallsBackToLatest) {
  for (const char* v : {"", "0.2.0", "9.9.9", "garbage"}) {
    const json info = versionInfo(v);
    EXPECT_EQ(info["cniVersion"], "1.1.0") << v;
    EXPECT_EQ(info["supportedVersions"].size(), 5u) << v;
  }
}

}  // namespace
}  // namespace dualstack::cni

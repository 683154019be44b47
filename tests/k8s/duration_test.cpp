// Durations in Go's form or seconds.
#include "dualstack/k8s/duration.hpp"

#include <gtest/gtest.h>

#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using sys::Code;
using sys::Error;

TEST(Duration, GoFormsAndSeconds) {
  EXPECT_EQ(parseDuration(json("2s"), "f"), milliseconds(2000));
  EXPECT_EQ(parseDuration(json("500ms"), "f"), milliseconds(500));
  EXPECT_EQ(parseDuration(json("1m30s"), "f"), milliseconds(90000));
  EXPECT_EQ(parseDuration(json("1.5s"), "f"), milliseconds(1500));
  EXPECT_EQ(parseDuration(json("2h"), "f"), milliseconds(7200000));
  EXPECT_EQ(parseDuration(json("0"), "f"), milliseconds(0));
  EXPECT_EQ(parseDuration(json(3), "f"), milliseconds(3000));
  EXPECT_EQ(parseDuration(json(0.25), "f"), milliseconds(250));
  for (const json& bad : {json("2"), json("s"), json("-1s"), json("1.2.3s"), json("2 s"),
                          json("2d"), json(-1), json(true), json(1e12)}) {
    try {
      parseDuration(bad, "ipam.node.timeout");
      ADD_FAILURE() << "accepted " << bad.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::InvalidConfig);
      EXPECT_EQ(e.msg().rfind("ipam.node.timeout: ", 0), 0U) << e.msg();
    }
  }
}

}  // namespace
}  // namespace dualstack::k8s

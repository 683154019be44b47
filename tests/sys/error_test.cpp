#include "dualstack/sys/error.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <stdexcept>
#include <string>

namespace dualstack::sys {
namespace {

Error thrownBy(const ErrorList& list, std::string_view prefix) {
  try {
    list.throwIfAny(prefix);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "throwIfAny did not throw";
  return Error(Code::Internal, "");
}

TEST(ErrorList, EmptyThrowsNothing) {
  const ErrorList list;
  EXPECT_TRUE(list.empty());
  EXPECT_NO_THROW(list.throwIfAny("DEL"));
}

TEST(ErrorList, OneFailureKeepsItsCodeAndMessage) {
  ErrorList list;
  list.add(Error(Code::TryAgainLater, "store lock held by PID 7"));
  const Error e = thrownBy(list, "DEL of eth0 incomplete");
  EXPECT_EQ(e.code(), Code::TryAgainLater);
  EXPECT_EQ(e.msg(), "DEL of eth0 incomplete: store lock held by PID 7");
  EXPECT_EQ(e.details(), "");
}

// The first failure's code is the error's; each failure keeps its own in the list and, when
// they differ, in the details an operator reads.
TEST(ErrorList, SeveralFailuresKeepEachCode) {
  ErrorList list;
  list.add(Error(Code::TryAgainLater, "lock held"));
  list.add(errnoError(Code::IoFailure, "remove 10.0.0.2", EACCES));
  ASSERT_EQ(list.size(), 2U);
  EXPECT_EQ(list.errors()[0].code(), Code::TryAgainLater);
  EXPECT_EQ(list.errors()[1].code(), Code::IoFailure);
  const Error e = thrownBy(list, "GC");
  EXPECT_EQ(e.code(), Code::TryAgainLater);
  EXPECT_EQ(e.msg(), "GC: lock held; remove 10.0.0.2: Permission denied");
  EXPECT_EQ(e.details(), "lock held (code 11)\nremove 10.0.0.2: Permission denied (code 5)");
}

TEST(ErrorList, SameCodesNeedNoDetails) {
  ErrorList list;
  list.add(Error(Code::IoFailure, "a"));
  list.add(Error(Code::IoFailure, "b"));
  const Error e = thrownBy(list, "release");
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_EQ(e.msg(), "release: a; b");
  EXPECT_EQ(e.details(), "");
}

TEST(ErrorList, ContextIsPrefixedAndOtherExceptionsAreInternal) {
  ErrorList list;
  list.add("delete veth", Error(Code::IoFailure, "EBUSY"));
  list.add("release addresses", std::runtime_error("bad_alloc-like"));
  EXPECT_EQ(list.errors()[0].msg(), "delete veth: EBUSY");
  EXPECT_EQ(list.errors()[0].code(), Code::IoFailure);
  EXPECT_EQ(list.errors()[1].msg(), "release addresses: bad_alloc-like");
  EXPECT_EQ(list.errors()[1].code(), Code::Internal);
}

TEST(Error, ContextAndErrno) {
  Error e = errnoError(Code::IoFailure, "open /x", ENOENT);
  EXPECT_EQ(e.msg(), "open /x: No such file or directory");
  e.context("read node");
  EXPECT_EQ(e.msg(), "read node: open /x: No such file or directory");
  EXPECT_EQ(e.code(), Code::IoFailure);
}

}  // namespace
}  // namespace dualstack::sys

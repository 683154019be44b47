// ADD's undo steps: reverse order, kept on commit, a failing step does not stop the others, and a
// step owns its data, so it still works once the frame that registered it has unwound.
#include "dualstack/plugin/rollback.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dualstack::plugin {
namespace {

// What the steps did, in order. A global: steps cannot capture.
std::vector<std::string> trace;

void record(const std::string& what) { trace.push_back(what); }
void fail(const std::string& what) { throw std::runtime_error(what + " failed"); }

class RollbackTest : public ::testing::Test {
 protected:
  void SetUp() override { trace.clear(); }
};

TEST_F(RollbackTest, UndoesInReverseOrder) {
  {
    Rollback r;
    r.add("first", record, std::string("first"));
    r.add("second", record, std::string("second"));
    r.add(
        "third", [](int n) { trace.push_back("third " + std::to_string(n)); }, 3);
  }
  EXPECT_EQ(trace, (std::vector<std::string>{"third 3", "second", "first"}));
}

TEST_F(RollbackTest, CommitKeepsTheWork) {
  {
    Rollback r;
    r.add("first", record, std::string("first"));
    r.commit();
  }
  EXPECT_TRUE(trace.empty());
}

TEST_F(RollbackTest, AFailingStepDoesNotStopTheOthers) {
  {
    Rollback r;
    r.add("first", record, std::string("first"));
    r.add("broken", fail, std::string("broken"));
    r.add("last", record, std::string("last"));
  }
  EXPECT_EQ(trace, (std::vector<std::string>{"last", "first"}));
}

// The arguments are copied into the step: the step runs after every local declared after the
// Rollback is gone, as when an exception unwinds ADD.
TEST_F(RollbackTest, StepsOwnTheirArgumentsWhenTheFrameUnwinds) {
  auto r = std::make_unique<Rollback>();
  try {
    std::string name = "veth-" + std::string(40, 'x');  // on the heap, freed on unwinding
    r->add("delete " + name, record, name);
    name.assign("changed afterwards");
    throw std::runtime_error("ADD failed");
  } catch (const std::runtime_error&) {
    r.reset();
  }
  EXPECT_EQ(trace, (std::vector<std::string>{"veth-" + std::string(40, 'x')}));
}

// What must not compile: steps that could refer to the dying frame.
template <typename F, typename... Args>
concept Registrable = requires(Rollback& r, F f, Args... args) {
  r.add("x", f, args...);
};

TEST_F(RollbackTest, StepsThatReferToTheFrameDoNotCompile) {
  int local = 0;
  auto byReference = [&local] { ++local; };
  auto byValue = [local] { (void)local; };
  auto captureless = [](int n) { (void)n; };
  static_assert(!Registrable<decltype(byReference)>);
  static_assert(!Registrable<decltype(byValue)>, "data goes in as arguments");
  static_assert(!Registrable<std::function<void()>>);
  static_assert(!Registrable<void (*)(std::string_view), std::string_view>);
  static_assert(!Registrable<void (*)(std::string_view), const char*>);
  static_assert(!Registrable<void (*)(const std::string&), std::reference_wrapper<std::string>>);
  static_assert(!Registrable<decltype(captureless), int*>);
  static_assert(Registrable<decltype(captureless), int>);
  static_assert(Registrable<void (*)(std::string_view), std::string>);
  static_assert(Registrable<void (*)(const std::string&), std::string>);
  static_assert(!Registrable<void (*)(const std::string&), int>, "not callable with the arguments");
  (void)byReference;
  (void)byValue;
}

}  // namespace
}  // namespace dualstack::plugin

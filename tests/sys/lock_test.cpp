// The bounded flock: a lock another process keeps is an error after the bound, with the holder
// named; a lock released during the wait is taken at once; the signal state is left as found.
#include "dualstack/sys/lock.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dualstack/sys/fd.hpp"
#include "support/support.hpp"

namespace dualstack::sys {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
using testing::LockHolder;
using testing::TempDir;

Fd openLock(const std::string& path) {
  return Fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600));
}

std::atomic<int> customHandlerCalls{0};
void customHandler(int /*signal*/) { ++customHandlerCalls; }

TEST(LockExclusive, AFreeLockIsTakenAtOnce) {
  TempDir tmp;
  const Fd fd = openLock(tmp.file("lock"));
  ASSERT_TRUE(fd);
  EXPECT_EQ(lockExclusive(fd.get(), milliseconds(0)), 0);
  // Held by this descriptor: a second one of this process must wait like anyone else.
  const Fd other = openLock(tmp.file("lock"));
  EXPECT_EQ(lockExclusive(other.get(), milliseconds(0)), ETIMEDOUT);
}

TEST(LockExclusive, AHolderThatStaysIsATimeoutNamingIt) {
  TempDir tmp;
  const LockHolder holder(tmp.file("lock"));
  const Fd fd = openLock(tmp.file("lock"));
  const auto start = steady_clock::now();
  EXPECT_EQ(lockExclusive(fd.get(), milliseconds(400)), ETIMEDOUT);
  const auto waited = steady_clock::now() - start;
  EXPECT_GE(waited, milliseconds(400));
  EXPECT_LT(waited, milliseconds(3000)) << "the wait must end at its bound";
  EXPECT_THAT(lockHolder(fd.get()), HasSubstr("PID " + std::to_string(holder.pid())));
  EXPECT_THAT(lockHolder(fd.get()), HasSubstr("(test_sys)"));
}

TEST(LockExclusive, ALockReleasedDuringTheWaitIsTakenThen) {
  TempDir tmp;
  auto holder = std::make_unique<LockHolder>(tmp.file("lock"));
  const Fd fd = openLock(tmp.file("lock"));
  std::thread release([&] {
    std::this_thread::sleep_for(milliseconds(300));
    holder.reset();
  });
  const auto start = steady_clock::now();
  const int rc = lockExclusive(fd.get(), milliseconds(20'000));
  const auto waited = steady_clock::now() - start;
  release.join();
  EXPECT_EQ(rc, 0);
  EXPECT_GE(waited, milliseconds(250));
  EXPECT_LT(waited, milliseconds(10'000)) << "the kernel hands the lock over when it is released";
}

TEST(LockExclusive, LeavesTheSignalStateAsItFoundIt) {
  TempDir tmp;
  const int sig = lockWakeSignal();
  struct sigaction custom {};
  custom.sa_handler = customHandler;
  ::sigemptyset(&custom.sa_mask);
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(sig, &custom, &saved), 0);
  sigset_t set, savedMask;
  ::sigemptyset(&set);
  ::sigaddset(&set, sig);
  ::pthread_sigmask(SIG_BLOCK, &set, &savedMask);

  {
    const LockHolder holder(tmp.file("lock"));
    const Fd fd = openLock(tmp.file("lock"));
    EXPECT_EQ(lockExclusive(fd.get(), milliseconds(200)), ETIMEDOUT);
  }

  struct sigaction now {};
  ::sigaction(sig, nullptr, &now);
  EXPECT_EQ(now.sa_handler, &customHandler) << "the previous handler must be back";
  sigset_t mask;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  EXPECT_EQ(::sigismember(&mask, sig), 1) << "the signal was blocked before and must be again";
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_EQ(::sigismember(&pending, sig), 0) << "no signal of the timer may be left pending";
  EXPECT_EQ(customHandlerCalls.load(), 0) << "the timer's signals are not the caller's";

  ::pthread_sigmask(SIG_SETMASK, &savedMask, nullptr);
  ::sigaction(sig, &saved, nullptr);
}

TEST(LockExclusive, ThreadsWaitingAtOnceEachGetTheirOwnBound) {
  TempDir tmp;
  const LockHolder holder(tmp.file("lock"));
  struct sigaction before {};
  ::sigaction(lockWakeSignal(), nullptr, &before);
  std::vector<std::thread> waiters;
  std::atomic<int> timedOut{0};
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&, i] {
      const Fd fd = openLock(tmp.file("lock"));
      if (lockExclusive(fd.get(), milliseconds(100 + 150 * i)) == ETIMEDOUT) ++timedOut;
    });
  }
  for (auto& t : waiters) t.join();
  EXPECT_EQ(timedOut.load(), 4);
  struct sigaction after {};
  ::sigaction(lockWakeSignal(), nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler) << "the last waiter restores the handler";
}

TEST(LockHolderOf, NobodyHoldingIsEmpty) {
  TempDir tmp;
  const Fd fd = openLock(tmp.file("lock"));
  EXPECT_EQ(lockHolder(fd.get()), "");
}

}  // namespace
}  // namespace dualstack::sys

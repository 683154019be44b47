#include "dualstack/sys/lock.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <thread>

#include "dualstack/sys/file.hpp"

namespace dualstack::sys {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// After the deadline the timer fires again at this interval: a signal that lands between the
// deadline check and the next flock call is followed by another one.
constexpr milliseconds kTick{50};

timespec toTimespec(milliseconds d) {
  return {static_cast<time_t>(d.count() / 1000), static_cast<long>(d.count() % 1000) * 1000000L};
}

void wake(int /*signal*/) {}

// The handler is process-wide while the timers are per thread: the first waiter installs it, the
// last one puts the previous handler back.
std::mutex handlerMutex;
int handlerUsers = 0;
struct sigaction previousHandler {};

bool acquireHandler() {
  const std::lock_guard<std::mutex> guard(handlerMutex);
  if (handlerUsers == 0) {
    struct sigaction sa {};
    sa.sa_handler = wake;
    ::sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: flock must return EINTR
    if (::sigaction(lockWakeSignal(), &sa, &previousHandler) != 0) return false;
  }
  ++handlerUsers;
  return true;
}

void releaseHandler() {
  const std::lock_guard<std::mutex> guard(handlerMutex);
  if (--handlerUsers == 0) ::sigaction(lockWakeSignal(), &previousHandler, nullptr);
}

// Interrupts a blocking system call of the calling thread with lockWakeSignal() once `after`
// has passed, and every kTick after that, for its lifetime.
class WakeTimer {
 public:
  explicit WakeTimer(milliseconds after) {
    const int sig = lockWakeSignal();
    ::sigemptyset(&set_);
    ::sigaddset(&set_, sig);
    sigset_t pending;
    // One already pending would be swallowed by our handler: leave it alone.
    if (::sigpending(&pending) != 0 || ::sigismember(&pending, sig) == 1) return;
    if (!acquireHandler()) return;
    installed_ = true;
    ::pthread_sigmask(SIG_UNBLOCK, &set_, &oldMask_);
    sigevent ev{};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = sig;
    ev._sigev_un._tid = ::gettid();
    if (::timer_create(CLOCK_MONOTONIC, &ev, &timer_) != 0) return;
    itimerspec when{};
    when.it_value = toTimespec(after);
    when.it_interval = toTimespec(kTick);
    if (::timer_settime(timer_, 0, &when, nullptr) != 0) {
      ::timer_delete(timer_);
      return;
    }
    armed_ = true;
  }
  ~WakeTimer() {
    if (armed_) ::timer_delete(timer_);
    if (!installed_) return;
    // Our signal may be pending still: take it before the previous disposition returns.
    ::pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    const timespec zero{0, 0};
    while (::sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    releaseHandler();
    ::pthread_sigmask(SIG_SETMASK, &oldMask_, nullptr);
  }
  WakeTimer(const WakeTimer&) = delete;
  WakeTimer& operator=(const WakeTimer&) = delete;

  bool armed() const { return armed_; }

 private:
  sigset_t set_{};
  sigset_t oldMask_{};
  timer_t timer_{};
  bool installed_ = false;
  bool armed_ = false;
};

}  // namespace

int lockWakeSignal() { return SIGRTMIN + 3; }

namespace {

int tryLock(int fd) {
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

int lockExclusive(int fd, milliseconds wait) {
  const int first = tryLock(fd);
  if (first != EWOULDBLOCK) return first;
  const auto deadline = steady_clock::now() + wait;
  if (wait <= milliseconds::zero()) return ETIMEDOUT;
  const WakeTimer timer(wait);
  if (!timer.armed()) {
    // No timer for this thread (a SIGALRM pending, or no POSIX timers): ask again and again.
    while (steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const int err = tryLock(fd);
      if (err != EWOULDBLOCK) return err;
    }
    return ETIMEDOUT;
  }
  // Blocking in flock queues us in the kernel, which hands the lock over the moment its holder
  // lets go; the timer ends the wait at the deadline.
  for (;;) {
    if (::flock(fd, LOCK_EX) == 0) return 0;
    if (errno != EINTR) return errno;
    if (steady_clock::now() >= deadline) {
      const int err = tryLock(fd);
      return err == EWOULDBLOCK ? ETIMEDOUT : err;
    }
  }
}

std::string lockHolder(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "";
  std::string locks;
  if (readRegularFileAt(AT_FDCWD, "/proc/locks", std::size_t{4} << 20, Links::Follow, locks)) {
    return "";
  }
  // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:10954763 0 EOF"; waiters carry "->" after the number.
  // The device is the superblock's, which is not always what stat reports (btrfs subvolumes), so
  // an inode that only one lock line names is taken without it.
  long byDevice = 0, byInode = 0;
  int inodeMatches = 0;
  std::istringstream in(locks);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string number, kind, mode, access, id;
    long pid = 0;
    fields >> number >> kind;
    if (kind == "->") continue;
    fields >> mode >> access >> pid >> id;
    if (kind != "FLOCK" || pid <= 0) continue;
    unsigned maj = 0, min = 0;
    unsigned long ino = 0;
    // NOLINTNEXTLINE(cert-err34-c): the kernel's own numbers; a wrong one fails the inode test
    if (std::sscanf(id.c_str(), "%x:%x:%lu", &maj, &min, &ino) != 3 || ino != st.st_ino) continue;
    if (maj == ::major(st.st_dev) && min == ::minor(st.st_dev)) byDevice = pid;
    byInode = pid;
    ++inodeMatches;
  }
  const long pid = byDevice != 0 ? byDevice : (inodeMatches == 1 ? byInode : 0);
  if (pid == 0) return "";
  std::string text = "PID " + std::to_string(pid);
  std::string comm;
  if (!readRegularFileAt(AT_FDCWD, "/proc/" + std::to_string(pid) + "/comm", 64, Links::Follow,
                         comm)) {
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (!comm.empty()) text += " (" + comm + ")";
  }
  return text;
}

}  // namespace dualstack::sys

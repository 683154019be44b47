// The file locks of the address store and of masquerade: flock(2), the lock host-local takes on
// its store, with a bound on the wait, so that a holder that is stuck becomes an error an
// operator can act on instead of a hang of every ADD and DEL behind it.
#pragma once

#include <chrono>
#include <string>

namespace dualstack::sys {

// How long the plugins wait for a lock another process holds. Normal contention is far below it
// (64 parallel ADDs on one store all finish in well under a second on 2 cores) and a runtime's
// own limit for a CNI call (kubelet: 2 minutes) far above it.
inline constexpr std::chrono::seconds kLockWait{20};

// Takes flock(LOCK_EX) on fd, waiting at most `wait` while another process holds it. Returns 0,
// ETIMEDOUT, or flock's errno. An uncontended lock costs one system call. While it waits, a
// timer of the calling thread interrupts flock with lockWakeSignal(), caught by a handler that
// does nothing; the previous handler and the thread's signal mask are restored before it
// returns. Safe to call from several threads at once.
int lockExclusive(int fd, std::chrono::milliseconds wait);

// The real-time signal lockExclusive uses (SIGRTMIN + 3); nothing else in dualstack-cni does.
int lockWakeSignal();

// Who holds a lock on the file open as fd, as /proc/locks tells: "PID 1234 (dualstack-ipam)",
// or "" when it cannot tell (no /proc, the holder in another PID namespace, the lock gone).
std::string lockHolder(int fd);

}  // namespace dualstack::sys

// Reading and writing sysctls through /proc/sys.
//
// Files under /proc/sys/net belong to the network namespace of the thread that *opens* them, so a
// per-namespace sysctl (net.ipv6.conf.eth0.accept_dad in the pod) is written while a ScopedSetns
// for that namespace is held. Each call opens, reads or writes, and closes; nothing is cached.
#pragma once

#include <string>
#include <string_view>

namespace dualstack::netns {

// `key` is a path relative to /proc/sys ("net/ipv4/ip_forward") or an absolute path under
// /proc/sys. Interface names go in verbatim ("net/ipv4/conf/eth0.100/forwarding").
// All functions throw cni::Error (Code::IoFailure) whose message names the file and, for the
// common failures, the likely cause.

// The value with trailing whitespace removed.
std::string readSysctl(std::string_view key);

void writeSysctl(std::string_view key, std::string_view value);

// Reads first and writes only when the value differs (ignoring trailing whitespace): a write to
// e.g. net/ipv4/ip_forward does far more work in the kernel than a read. Returns true if it wrote.
bool setSysctlIfDifferent(std::string_view key, std::string_view value);

}  // namespace dualstack::netns

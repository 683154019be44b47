// Reading and writing sysctls through /proc/sys.
//
// Files under /proc/sys/net belong to the network namespace of the thread that *opens* them, so a
// per-namespace sysctl (net.ipv6.conf.eth0.accept_dad in the pod) is written while a ScopedSetns
// for that namespace is held. Each call opens, reads or writes, and closes; nothing is cached.
#pragma once

#include <string>
#include <string_view>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/fd.hpp"

namespace dualstack::netns {

// `key` is a path relative to /proc/sys ("net/ipv4/ip_forward") or an absolute path under
// /proc/sys. Interface names go in verbatim ("net/ipv4/conf/eth0.100/forwarding").
// All functions throw sys::Error (Code::IoFailure) whose message names the file and, for the
// common failures, the likely cause.

// The value with trailing whitespace removed.
std::string readSysctl(std::string_view key);

void writeSysctl(std::string_view key, std::string_view value);

// Reads first and writes only when the value differs (ignoring trailing whitespace): a write to
// e.g. net/ipv4/ip_forward does far more work in the kernel than a read. Returns true if it wrote.
bool setSysctlIfDifferent(std::string_view key, std::string_view value);

// A directory under /proc/sys held open ("net/ipv6/conf"), for several sysctls below it. The
// kernel keeps one dentry per network namespace for each per-namespace directory under
// /proc/sys/net ("ipv6", "ipv4", ...), all under the same parent and name, and tells them apart
// only while comparing names: every lookup of such a path walks one entry for each namespace that
// has looked it up, tens of microseconds on a node with a hundred pods. Below the held directory
// the names are this namespace's own. Names resolve against the calling thread's namespace, so
// use a SysctlDir only while in the namespace it was opened in.
class SysctlDir {
 public:
  // Throws like readSysctl (e.g. ENOENT for net/ipv6/conf without IPv6).
  explicit SysctlDir(std::string_view dir);
  // `name` relative to the directory ("eth0/accept_dad").
  std::string read(const std::string& name) const;
  void write(const std::string& name, std::string_view value) const;
  bool setIfDifferent(const std::string& name, std::string_view value) const;

 private:
  std::string path_;
  sys::Fd fd_;
};

}  // namespace dualstack::netns

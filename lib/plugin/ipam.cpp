// The IPAM call of every verb: our own dualstack-ipam in process, any other IPAM plugin exec'd.
#include <fcntl.h>
#include <sys/stat.h>

#include "common.hpp"
#include "dualstack/cni/delegate.hpp"
#include "dualstack/cni/skel.hpp"
#include "dualstack/ipam/commands.hpp"
#include "dualstack/sys/elf.hpp"
#include "dualstack/sys/fd.hpp"

namespace dualstack::plugin {

bool isThisBuild(const std::string& binary) {
  const std::string& own = sys::ownBuildId();
  if (own.empty()) return false;
  const sys::Fd fd(::open(binary.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return sys::buildIdOf(fd.get()) == own;
}

nlohmann::json callIpam(const std::string& type, cni::Command command, const cni::Env& env,
                        const std::string& config) {
  // The name matters as much as the build: the program acts as dualstack-ipam only under that
  // name (cmd/dualstack/main.cpp).
  if (type == ipam::kPluginName) {
    // The lookup an exec would make, with its error when the plugin is missing.
    if (isThisBuild(cni::findPlugin(type, env.path))) {
      return cni::runInProcess(type, ipam::handlers(), command, config);
    }
  }
  return cni::delegate(type, command, env, config);
}

}  // namespace dualstack::plugin

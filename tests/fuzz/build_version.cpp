// The version string lives in lib/cni/skel.cpp with the main loop, which the fuzz build leaves
// out; the Kubernetes client puts it in its User-Agent.
#include "dualstack/cni/skel.hpp"

namespace dualstack::cni {
std::string_view buildVersion() { return "fuzz"; }
}  // namespace dualstack::cni

// The version of this build ("0.4.0-12-gabcdef"), as `--version`, the installer and the
// Kubernetes client's User-Agent report it.
#pragma once

#include <string_view>

namespace dualstack::sys {

std::string_view buildVersion();

}  // namespace dualstack::sys

#include "dualstack/sys/version.hpp"

namespace dualstack::sys {

// Its own translation unit: the only one rebuilt when the version changes.
std::string_view buildVersion() { return DUALSTACK_VERSION; }

}  // namespace dualstack::sys

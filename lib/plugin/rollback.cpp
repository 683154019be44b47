#include "dualstack/plugin/rollback.hpp"

#include <cstdio>
#include <exception>

namespace dualstack::plugin {

Rollback::~Rollback() {
  for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
    try {
      it->second();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dualstack: rollback: %s: %s\n", it->first.c_str(), e.what());
    }
  }
}

}  // namespace dualstack::plugin

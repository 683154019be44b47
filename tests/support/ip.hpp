// Address and prefix literals for tests: a typo in a test's literal throws instead of yielding an
// empty optional.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "dualstack/ip/address.hpp"

namespace dualstack::testing {

inline ip::Prefix P(std::string_view text) {
  auto p = ip::Prefix::parse(text);
  if (!p) throw std::invalid_argument("bad prefix in test: " + std::string(text));
  return *p;
}

inline ip::Address A(std::string_view text) {
  auto a = ip::Address::parse(text);
  if (!a) throw std::invalid_argument("bad address in test: " + std::string(text));
  return *a;
}

}  // namespace dualstack::testing

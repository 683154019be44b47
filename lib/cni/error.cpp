#include "dualstack/cni/error.hpp"

#include <cstring>

namespace dualstack::cni {

Error::Error(Code code, std::string msg, std::string details)
    : code_(code), msg_(std::move(msg)), details_(std::move(details)) {}

Error& Error::context(std::string_view ctx) {
  msg_ = std::string(ctx) + ": " + msg_;
  return *this;
}

Error errnoError(Code code, std::string_view what, int err) {
  return Error(code, std::string(what) + ": " + std::strerror(err));
}

}  // namespace dualstack::cni

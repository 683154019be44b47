#include "dualstack/sys/error.hpp"

#include <cstring>
#include <utility>

namespace dualstack::sys {

Error::Error(Code code, std::string msg, std::string details)
    : code_(code), msg_(std::move(msg)), details_(std::move(details)) {}

Error& Error::context(std::string_view ctx) {
  msg_ = std::string(ctx) + ": " + msg_;
  return *this;
}

Error errnoError(Code code, std::string_view what, int err) {
  return Error(code, std::string(what) + ": " + std::strerror(err));
}

void ErrorList::add(Error e) { errors_.push_back(std::move(e)); }

void ErrorList::add(std::string_view context, const std::exception& e) {
  if (const auto* err = dynamic_cast<const Error*>(&e)) {
    Error copy = *err;
    errors_.push_back(std::move(copy.context(context)));
  } else {
    errors_.emplace_back(Code::Internal, std::string(context) + ": " + e.what());
  }
}

void ErrorList::throwIfAny(std::string_view prefix) const {
  if (!errors_.empty()) throw toError(prefix);
}

Error ErrorList::toError(std::string_view prefix) const {
  std::string msg(prefix);
  bool mixed = false;
  for (std::size_t i = 0; i < errors_.size(); ++i) {
    msg += (i == 0 ? ": " : "; ") + errors_[i].msg();
    mixed = mixed || errors_[i].code() != errors_.front().code();
  }
  std::string details;
  if (mixed) {
    for (const Error& e : errors_) {
      if (!details.empty()) details += '\n';
      details += e.msg() + " (code " + std::to_string(static_cast<int>(e.code())) + ")";
    }
  }
  return Error(errors_.front().code(), msg, details);
}

}  // namespace dualstack::sys

// The one error type of dualstack-cni: a CNI error code, a message an operator can act on, and
// optional details. Layers add context as the error travels up; only main() turns it into the
// JSON error on stdout and the exit status.
#pragma once

#include <exception>
#include <string>
#include <string_view>

namespace dualstack::cni {

// Error codes from the CNI specification; 100 and above are ours.
enum class Code : int {
  IncompatibleVersion = 1,
  UnsupportedField = 2,
  UnknownContainer = 3,
  InvalidEnv = 4,
  IoFailure = 5,
  DecodeFailure = 6,
  InvalidConfig = 7,
  TryAgainLater = 11,
  NotAvailable = 50,
  NotAvailableDegraded = 51,
  // Plugin-specific codes.
  Internal = 100,        // a bug or an unexpected kernel answer
  RangeExhausted = 101,  // no free address left in a range
  AlreadyExists = 102,   // the interface or address already exists where ADD wants to create it
  CheckFailed = 103,     // CHECK found the attachment differs from what ADD made
};

class Error : public std::exception {
 public:
  Error(Code code, std::string msg, std::string details = {});

  Code code() const noexcept { return code_; }
  const std::string& msg() const noexcept { return msg_; }
  const std::string& details() const noexcept { return details_; }
  const char* what() const noexcept override { return msg_.c_str(); }

  // Prefixes "context: " to the message; returns *this so callers can `throw e.context(...)`.
  Error& context(std::string_view ctx);

 private:
  Code code_;
  std::string msg_;
  std::string details_;
};

// An Error whose message is "<what>: <strerror(err)>".
Error errnoError(Code code, std::string_view what, int err);

}  // namespace dualstack::cni

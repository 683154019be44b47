// The one error type of dualstack-cni: a CNI error code, a message an operator can act on, and
// optional details. Layers add context as the error travels up; only main() turns it into the
// JSON error on stdout and the exit status.
#pragma once

#include <cstddef>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace dualstack::sys {

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

// The failures of a best-effort operation that goes on after one (DEL, GC, releasing the
// addresses of an attachment) and reports them all at its end. Each failure keeps its own code
// and message: a lock timeout (11) is not reported as an I/O failure (5) because it came second.
class ErrorList {
 public:
  void add(Error e);
  // An Error gets "<context>: " prefixed; another exception becomes Internal "<context>: what()".
  void add(std::string_view context, const std::exception& e);

  bool empty() const noexcept { return errors_.empty(); }
  std::size_t size() const noexcept { return errors_.size(); }
  const std::vector<Error>& errors() const noexcept { return errors_; }

  // Nothing when empty; else throws toError(prefix).
  void throwIfAny(std::string_view prefix) const;
  // One Error for all of them, with the first failure's code (what went wrong first is what an
  // operator fixes first): "<prefix>: <msg 1>; <msg 2>". With several failures of different
  // codes, its details list each as "<msg> (code N)", one per line. Requires !empty().
  Error toError(std::string_view prefix) const;

 private:
  std::vector<Error> errors_;
};

}  // namespace dualstack::sys

// Undo steps registered while ADD builds an attachment, run in reverse order unless the ADD
// completes: a failed ADD leaves nothing behind.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace dualstack::plugin {

class Rollback {
 public:
  Rollback() = default;
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback();

  // `what` names the step for the message printed (on stderr) if undoing it fails.
  void add(std::string what, std::function<void()> undo) {
    steps_.emplace_back(std::move(what), std::move(undo));
  }
  // The work is complete: keep it.
  void commit() { steps_.clear(); }

 private:
  std::vector<std::pair<std::string, std::function<void()>>> steps_;
};

}  // namespace dualstack::plugin

// Reading the few fields we need from large API answers (a page of 500 Nodes, each with its
// labels, conditions and container images) without building the whole JSON tree: a SAX parse that
// keeps only chosen paths, so memory follows what is kept, not what was sent.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace dualstack::k8s::detail {

// Deeper nesting than this is refused: API objects are far shallower, and a bound keeps a hostile
// answer from costing memory or time in proportion to its depth.
inline constexpr std::size_t kMaxJsonDepth = 64;

// The paths of a document to keep. "[]" stands for every element of an array.
class KeepPaths {
 public:
  struct Node {
    std::map<std::string, std::unique_ptr<Node>, std::less<>> children;
    bool whole = false;  // keep everything below
    const Node* child(std::string_view key) const;
  };

  // Keeps the value at `path` whole (an object or array with everything in it).
  KeepPaths& keep(const std::vector<std::string_view>& path);
  const Node& root() const { return root_; }

 private:
  Node* walk(const std::vector<std::string_view>& path);
  Node root_;
};

// The document in `text` with only the kept paths (and the objects and arrays leading to them).
// A kept path whose value has another type than expected is kept as it is, so that the caller can
// report it. Error(DecodeFailure) "<where>: ..." for text that is not one JSON value, or nested
// deeper than kMaxJsonDepth.
nlohmann::json parsePruned(std::string_view text, const KeepPaths& keep, std::string_view where);

}  // namespace dualstack::k8s::detail

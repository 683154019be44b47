// The API's list and watch answers for Nodes, decoded without keeping their JSON: of each Node
// only what the Node model holds and its resourceVersion survive the parse (see informer.hpp for
// the requests).
//
// A watch answer is a stream of lines, one JSON event each:
//   {"type": "ADDED" | "MODIFIED" | "DELETED", "object": <Node>}
//   {"type": "BOOKMARK", "object": {"kind": "Node", "metadata": {"resourceVersion": "..."}}}
//   {"type": "ERROR", "object": <Status>}        e.g. code 410: the resourceVersion is too old
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "dualstack/k8s/api.hpp"

namespace dualstack::k8s {

// One page of GET /api/v1/nodes?limit=N.
struct NodeListPage {
  std::string resourceVersion;  // metadata.resourceVersion: the list's, to watch from
  std::string continueToken;    // metadata.continue: "" on the last page
};

using NodeItemFn = std::function<void(Node&&, std::string&& rv)>;

// Decodes a NodeList as its bytes arrive, however they are split: each element of `items` is
// parsed and handed to onItem (with its resourceVersion) as soon as it is complete, so only one
// Node's text is held at a time. Error(DecodeFailure) naming `where` for anything but a NodeList
// with a resourceVersion whose items are Nodes with a name, for a wrong type in a field of the
// Node model, for nesting deeper than 64 levels, and for an item (or all that is not items) longer
// than maxItem bytes. After an error the decoder is unusable.
class NodeListDecoder {
 public:
  NodeListDecoder(NodeItemFn onItem, std::string where, std::size_t maxItem = 4U << 20);
  void feed(std::string_view bytes);
  // The list's metadata, once the whole answer was fed.
  NodeListPage finish();

 private:
  [[noreturn]] void fail(const std::string& msg) const;
  void keep(std::string_view piece);  // into the item, the rest, or (whitespace) nowhere
  void item();

  NodeItemFn onItem_;
  std::string where_;
  std::size_t maxItem_;
  std::string rest_;  // the document without the elements of `items`
  std::string item_;  // the element being read
  std::string key_;   // the last key of the top-level object (up to 64 bytes)
  std::size_t depth_ = 0;
  std::size_t index_ = 0;
  bool inString_ = false;
  bool escaped_ = false;
  bool keyString_ = false;
  enum class Items { Before, Open, Element, Closed } items_ = Items::Before;
  bool needComma_ = false;
};

// The whole answer at once.
NodeListPage decodeNodeList(std::string_view body, const NodeItemFn& onItem,
                            std::string_view where);

struct WatchEvent {
  enum class Type { Added, Modified, Deleted, Bookmark, Error };
  Type type = Type::Error;
  Node node;                    // Added, Modified, Deleted
  std::string resourceVersion;  // the object's (Bookmark: where the watch stands)
  // Error: the Status object's code, reason and message.
  std::int64_t code = 0;
  std::string reason;
  std::string message;
};

// One line of a watch stream. Error(DecodeFailure) for a line that is not such an event.
WatchEvent decodeWatchEvent(std::string_view line);

// Splits a watch stream into lines however its bytes arrive (a line split across reads, several
// lines in one) and decodes each complete one.
class WatchDecoder {
 public:
  explicit WatchDecoder(std::size_t maxLine = 4U << 20) : maxLine_(maxLine) {}

  // Calls onEvent for each complete line in order; onEvent returning false stops there (the rest
  // is dropped). Error(DecodeFailure) for a line that is not an event or that grows past maxLine
  // bytes; the decoder is unusable afterwards. Empty lines are skipped.
  void feed(std::string_view bytes, const std::function<bool(WatchEvent&&)>& onEvent);
  // Bytes of an incomplete line held (a stream that ends here was cut inside an event).
  std::size_t pending() const { return buf_.size(); }

 private:
  std::size_t maxLine_;
  std::string buf_;
};

}  // namespace dualstack::k8s

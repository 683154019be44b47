#include "dualstack/k8s/watch.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/json.hpp"
#include "pruned.hpp"

namespace dualstack::k8s {

using nlohmann::json;
using sys::Code;
using sys::Error;

namespace {

// What parseNode reads, and the resourceVersion, of the Node at `at`.
void keepNode(detail::KeepPaths& k, const std::vector<std::string_view>& at) {
  for (const std::vector<std::string_view>& rest :
       {std::vector<std::string_view>{"metadata", "name"},
        std::vector<std::string_view>{"metadata", "resourceVersion"},
        std::vector<std::string_view>{"spec", "podCIDRs"},
        std::vector<std::string_view>{"spec", "podCIDR"},
        std::vector<std::string_view>{"status", "addresses"}}) {
    std::vector<std::string_view> path = at;
    path.insert(path.end(), rest.begin(), rest.end());
    k.keep(path);
  }
}

const detail::KeepPaths& listPaths() {
  static const detail::KeepPaths paths = [] {
    detail::KeepPaths k;
    k.keep({"kind"}).keep({"metadata", "resourceVersion"}).keep({"metadata", "continue"});
    return k;
  }();
  return paths;
}

const detail::KeepPaths& itemPaths() {
  static const detail::KeepPaths paths = [] {
    detail::KeepPaths k;
    keepNode(k, {});
    return k;
  }();
  return paths;
}

const detail::KeepPaths& eventPaths() {
  static const detail::KeepPaths paths = [] {
    detail::KeepPaths k;
    k.keep({"type"})
        .keep({"object", "kind"})
        .keep({"object", "code"})
        .keep({"object", "reason"})
        .keep({"object", "message"});
    keepNode(k, {"object"});
    return k;
  }();
  return paths;
}

// The object's metadata.resourceVersion; Error when it is missing or not a string.
std::string resourceVersionOf(const json& obj, const std::string& where) {
  const json* meta = sys::optObject(obj, "metadata", where, Code::DecodeFailure);
  std::optional<std::string> rv;
  if (meta != nullptr) {
    rv = sys::optString(*meta, "resourceVersion", where + ".metadata", Code::DecodeFailure);
  }
  if (!rv || rv->empty()) throw Error(Code::DecodeFailure, where + ": no metadata.resourceVersion");
  return *rv;
}

Node namedNode(const json& obj, const std::string& where) {
  Node n = parseNode(obj, where);
  if (n.name.empty()) throw Error(Code::DecodeFailure, where + ": a Node without metadata.name");
  return n;
}

}  // namespace

NodeListDecoder::NodeListDecoder(NodeItemFn onItem, std::string where, std::size_t maxItem)
    : onItem_(std::move(onItem)), where_(std::move(where)), maxItem_(maxItem) {}

void NodeListDecoder::fail(const std::string& msg) const {
  throw Error(Code::DecodeFailure, where_ + ": " + msg);
}

void NodeListDecoder::item() {
  const std::string wi = where_ + ".items[" + std::to_string(index_++) + "]";
  const json obj = detail::parsePruned(item_, itemPaths(), wi);
  item_.clear();
  std::string rv = resourceVersionOf(obj, wi);
  onItem_(namedNode(obj, wi), std::move(rv));
}

// A scan of the JSON structure (strings, nesting) that cuts each element of the top-level
// "items" array out of the stream; the elements and the rest are then parsed on their own, which
// also checks them. Between the elements only whitespace and single commas are accepted.
void NodeListDecoder::feed(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (inString_ && !escaped_) {
      // Most of a Node's text is inside strings: take it up to the next quote or backslash.
      const std::size_t end = std::min(bytes.find_first_of("\"\\", i), bytes.size());
      if (end > i) {
        const std::string_view run = bytes.substr(i, end - i);
        if (keyString_ && key_.size() <= 64) key_.append(run.substr(0, 65 - key_.size()));
        keep(run);
        i = end;
        if (i == bytes.size()) break;
      }
    }
    const char c = bytes[i];
    if (inString_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        inString_ = false;
        keyString_ = false;
      }
      if (keyString_ && key_.size() <= 64) key_ += c;
    } else if (c == '"') {
      inString_ = true;
      keyString_ = depth_ == 1 && items_ != Items::Element;
      if (keyString_) key_.clear();
    } else if (c == '{' || c == '[') {
      if (++depth_ > detail::kMaxJsonDepth) {
        fail("nested deeper than " + std::to_string(detail::kMaxJsonDepth) + " levels");
      }
      if (items_ == Items::Open && depth_ == 3) {
        if (c != '{' || needComma_) {
          fail("items[" + std::to_string(index_) + "]: expected an object");
        }
        items_ = Items::Element;
      } else if (items_ == Items::Before && depth_ == 2 && c == '[' && key_ == "items") {
        items_ = Items::Open;
        rest_ += c;
        continue;
      }
    } else if (c == '}' || c == ']') {
      if (depth_ == 0) fail("not valid JSON: unbalanced " + std::string(1, c));
      --depth_;
      if (items_ == Items::Element && depth_ == 2) {
        item_ += c;
        item();
        items_ = Items::Open;
        needComma_ = true;
        continue;
      }
      if (items_ == Items::Open && depth_ == 1) {
        if (index_ > 0 && !needComma_) fail("items: a comma before the end of the array");
        items_ = Items::Closed;
      }
    } else if (items_ == Items::Open && depth_ == 2 && c == ',') {
      if (!needComma_) fail("items[" + std::to_string(index_) + "]: expected an object");
      needComma_ = false;
      continue;
    }
    keep(std::string_view(&c, 1));
  }
}

void NodeListDecoder::keep(std::string_view piece) {
  if (items_ == Items::Element) {
    if (item_.size() + piece.size() > maxItem_) {
      fail("items[" + std::to_string(index_) + "] is longer than " + std::to_string(maxItem_) +
           " bytes");
    }
    item_.append(piece);
  } else if (items_ == Items::Open && depth_ == 2) {
    if (piece.find_first_not_of(" \t\r\n") != std::string_view::npos) {
      fail("items[" + std::to_string(index_) + "]: expected an object");
    }
  } else {
    if (rest_.size() + piece.size() > maxItem_) {
      fail("the list without its items is longer than " + std::to_string(maxItem_) + " bytes");
    }
    rest_.append(piece);
  }
}

NodeListPage NodeListDecoder::finish() {
  const json top = detail::parsePruned(rest_, listPaths(), where_);
  if (!top.is_object() || top.value("kind", "") != "NodeList") fail("expected a NodeList");
  NodeListPage page;
  page.resourceVersion = resourceVersionOf(top, where_);
  if (const json* meta = sys::optObject(top, "metadata", where_, Code::DecodeFailure)) {
    page.continueToken =
        sys::optString(*meta, "continue", where_ + ".metadata", Code::DecodeFailure).value_or("");
  }
  return page;
}

NodeListPage decodeNodeList(std::string_view body, const NodeItemFn& onItem,
                            std::string_view where) {
  NodeListDecoder d(onItem, std::string(where));
  d.feed(body);
  return d.finish();
}

WatchEvent decodeWatchEvent(std::string_view line) {
  const std::string w = "watch event";
  const json j = detail::parsePruned(line, eventPaths(), w);
  if (!j.is_object()) throw Error(Code::DecodeFailure, w + ": expected an object");
  const std::string type = sys::reqString(j, "type", w, Code::DecodeFailure);
  const json* obj = sys::optObject(j, "object", w, Code::DecodeFailure);
  if (obj == nullptr) throw Error(Code::DecodeFailure, w + " " + type + ": no object");
  const std::string wo = w + " " + type + ".object";

  WatchEvent e;
  if (type == "ERROR") {
    e.type = WatchEvent::Type::Error;
    if (const json* code = sys::member(*obj, "code", wo); code && code->is_number_integer()) {
      e.code = code->get<std::int64_t>();
    }
    e.reason = sys::optString(*obj, "reason", wo, Code::DecodeFailure).value_or("");
    e.message = sys::optString(*obj, "message", wo, Code::DecodeFailure).value_or("");
    return e;
  }
  e.resourceVersion = resourceVersionOf(*obj, wo);
  if (type == "BOOKMARK") {
    e.type = WatchEvent::Type::Bookmark;
    return e;
  }
  if (type == "ADDED") {
    e.type = WatchEvent::Type::Added;
  } else if (type == "MODIFIED") {
    e.type = WatchEvent::Type::Modified;
  } else if (type == "DELETED") {
    e.type = WatchEvent::Type::Deleted;
  } else {
    throw Error(Code::DecodeFailure, w + ": unknown type \"" + type.substr(0, 40) + "\"");
  }
  e.node = namedNode(*obj, wo);
  return e;
}

void WatchDecoder::feed(std::string_view bytes, const std::function<bool(WatchEvent&&)>& onEvent) {
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    const std::size_t take = nl == std::string_view::npos ? bytes.size() : nl;
    if (buf_.size() + take > maxLine_) {
      buf_.clear();
      throw Error(Code::DecodeFailure,
                  "a watch event longer than " + std::to_string(maxLine_) + " bytes");
    }
    if (nl == std::string_view::npos) {
      buf_.append(bytes);
      return;
    }
    std::string_view line = bytes.substr(0, nl);
    bytes.remove_prefix(nl + 1);
    if (!buf_.empty()) {
      buf_.append(line);
      line = buf_;
    }
    const bool blank = line.find_first_not_of(" \t\r") == std::string_view::npos;
    bool more = true;
    if (!blank) {
      WatchEvent e = decodeWatchEvent(line);
      buf_.clear();
      more = onEvent(std::move(e));
    }
    buf_.clear();
    if (!more) return;
  }
}

}  // namespace dualstack::k8s

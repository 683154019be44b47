#include "dualstack/k8s/watch.hpp"

#include <utility>
#include <vector>

#include "dualstack/cni/json.hpp"
#include "pruned.hpp"

namespace dualstack::k8s {

using cni::Code;
using cni::Error;
using nlohmann::json;

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
    k.emit({"items", "[]"});
    keepNode(k, {"items", "[]"});
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
  const json* meta = cni::optObject(obj, "metadata", where, Code::DecodeFailure);
  std::optional<std::string> rv;
  if (meta != nullptr) {
    rv = cni::optString(*meta, "resourceVersion", where + ".metadata", Code::DecodeFailure);
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

NodeListPage decodeNodeList(std::string_view body,
                            const std::function<void(Node&&, std::string&& rv)>& onItem,
                            std::string_view where) {
  const std::string w(where);
  std::size_t index = 0;
  const json top = detail::parsePruned(
      body, listPaths(),
      [&](json&& item) {
        const std::string wi = w + ".items[" + std::to_string(index++) + "]";
        std::string rv = resourceVersionOf(item, wi);
        onItem(namedNode(item, wi), std::move(rv));
      },
      w);
  if (!top.is_object() || top.value("kind", "") != "NodeList") {
    throw Error(Code::DecodeFailure, w + ": expected a NodeList");
  }
  NodeListPage page;
  page.resourceVersion = resourceVersionOf(top, w);
  if (const json* meta = cni::optObject(top, "metadata", w, Code::DecodeFailure)) {
    page.continueToken =
        cni::optString(*meta, "continue", w + ".metadata", Code::DecodeFailure).value_or("");
  }
  return page;
}

WatchEvent decodeWatchEvent(std::string_view line) {
  const std::string w = "watch event";
  const json j = detail::parsePruned(line, eventPaths(), nullptr, w);
  if (!j.is_object()) throw Error(Code::DecodeFailure, w + ": expected an object");
  const std::string type = cni::reqString(j, "type", w, Code::DecodeFailure);
  const json* obj = cni::optObject(j, "object", w, Code::DecodeFailure);
  if (obj == nullptr) throw Error(Code::DecodeFailure, w + " " + type + ": no object");
  const std::string wo = w + " " + type + ".object";

  WatchEvent e;
  if (type == "ERROR") {
    e.type = WatchEvent::Type::Error;
    if (const json* code = cni::member(*obj, "code", wo); code && code->is_number_integer()) {
      e.code = code->get<std::int64_t>();
    }
    e.reason = cni::optString(*obj, "reason", wo, Code::DecodeFailure).value_or("");
    e.message = cni::optString(*obj, "message", wo, Code::DecodeFailure).value_or("");
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

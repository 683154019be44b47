#include "pruned.hpp"

#include <utility>
#include <vector>

#include "dualstack/sys/error.hpp"

namespace dualstack::k8s::detail {

using nlohmann::json;
using sys::Code;
using sys::Error;

const KeepPaths::Node* KeepPaths::Node::child(std::string_view key) const {
  const auto it = children.find(key);
  return it == children.end() ? nullptr : it->second.get();
}

KeepPaths::Node* KeepPaths::walk(const std::vector<std::string_view>& path) {
  Node* n = &root_;
  for (const std::string_view key : path) {
    auto it = n->children.find(key);
    if (it == n->children.end()) {
      it = n->children.emplace(std::string(key), std::make_unique<Node>()).first;
    }
    n = it->second.get();
  }
  return n;
}

KeepPaths& KeepPaths::keep(const std::vector<std::string_view>& path) {
  walk(path)->whole = true;
  return *this;
}

namespace {

// Builds the pruned tree from SAX events. Each open object or array has a frame: outside the kept
// paths it only counts depth (container == nullptr); on a kept path it has a container in the
// tree and the KeepPaths node it corresponds to; inside a value kept whole, node is nullptr and
// everything is built.
class Pruner final : public nlohmann::json_sax<json> {
 public:
  explicit Pruner(const KeepPaths& keep) : keep_(keep) {}

  json root;
  std::string error;

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override { return value(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return value(json(v)); }
  bool number_float(number_float_t v, const string_t& /*text*/) override { return value(json(v)); }
  bool string(string_t& v) override { return value(json(std::move(v))); }
  bool binary(binary_t& /*v*/) override { return value(json()); }

  bool key(string_t& k) override {
    Frame& f = frames_.back();
    if (f.container == nullptr) return true;
    if (f.node == nullptr) {
      key_ = std::move(k);
      keyNode_ = nullptr;
      keyKept_ = true;
      return true;
    }
    keyNode_ = f.node->child(k);
    keyKept_ = keyNode_ != nullptr;
    if (keyKept_) key_ = std::move(k);
    return true;
  }

  bool start_object(std::size_t /*size*/) override { return open(json::object()); }
  bool start_array(std::size_t /*size*/) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& ex) override {
    if (error.empty()) {
      // nlohmann's message ends with the offending text; the byte offset is enough.
      std::string what = ex.what();
      const auto colon = what.find("syntax error while parsing value - ");
      if (colon != std::string::npos) what = what.substr(colon + 35);
      error = what.substr(0, 200) + " (at byte " + std::to_string(position) + ")";
    }
    return false;
  }

 private:
  struct Frame {
    json* container;              // nullptr: not kept
    const KeepPaths::Node* node;  // nullptr inside a whole value
  };

  // Where a value that starts now belongs: its KeepPaths node (nullptr inside a whole value) and
  // whether it is kept at all.
  struct Slot {
    bool kept;
    const KeepPaths::Node* node;
  };
  Slot slot() const {
    if (frames_.empty()) return {true, &keep_.root()};
    const Frame& f = frames_.back();
    if (f.container == nullptr) return {false, nullptr};
    if (f.node == nullptr) return {true, nullptr};
    if (f.container->is_array()) {
      const KeepPaths::Node* n = f.node->child("[]");
      return {n != nullptr, n};
    }
    return {keyKept_, keyNode_};
  }

  json* place(json&& v) {
    if (frames_.empty()) {
      root = std::move(v);
      return &root;
    }
    json& c = *frames_.back().container;
    if (c.is_array()) {
      c.push_back(std::move(v));
      return &c.back();
    }
    json& slotRef = c[key_];
    slotRef = std::move(v);
    return &slotRef;
  }

  bool value(json&& v) {
    const Slot s = slot();
    if (s.kept) place(std::move(v));
    return true;
  }

  bool open(json&& empty) {
    if (frames_.size() >= kMaxJsonDepth) {
      error = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    const Slot s = slot();
    if (!s.kept) {
      frames_.push_back({nullptr, nullptr});
      return true;
    }
    json* c = place(std::move(empty));
    frames_.push_back({c, (s.node != nullptr && !s.node->whole) ? s.node : nullptr});
    return true;
  }

  bool close() {
    frames_.pop_back();
    return true;
  }

  const KeepPaths& keep_;
  std::vector<Frame> frames_;
  std::string key_;
  const KeepPaths::Node* keyNode_ = nullptr;
  bool keyKept_ = false;
};

}  // namespace

json parsePruned(std::string_view text, const KeepPaths& keep, std::string_view where) {
  Pruner p(keep);
  const bool ok = json::sax_parse(text.begin(), text.end(), &p, json::input_format_t::json, true);
  if (!ok) {
    throw Error(Code::DecodeFailure, std::string(where) + ": not valid JSON: " +
                                         (p.error.empty() ? std::string("parse failed") : p.error));
  }
  return std::move(p.root);
}

}  // namespace dualstack::k8s::detail

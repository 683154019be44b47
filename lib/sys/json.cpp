#include "dualstack/sys/json.hpp"

#include <limits>
#include <vector>

namespace dualstack::sys {

std::string fieldPath(std::string_view where, std::string_view key) {
  if (where.empty()) return std::string(key);
  return std::string(where) + "." + std::string(key);
}

std::string_view typeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

namespace {

// Builds the tree as nlohmann's own DOM parser does, but refuses (or, with skipDeeper, leaves
// out) arrays and objects nested deeper than maxDepth. The parser drives it with its state on the
// heap, so no input can exhaust the stack here; the bound protects what is done with the tree.
template <typename BasicJson>
class BoundedBuilder {
 public:
  using number_integer_t = typename BasicJson::number_integer_t;
  using number_unsigned_t = typename BasicJson::number_unsigned_t;
  using number_float_t = typename BasicJson::number_float_t;
  using string_t = typename BasicJson::string_t;
  using binary_t = typename BasicJson::binary_t;

  BoundedBuilder(BasicJson& root, std::size_t maxDepth, bool skipDeeper)
      : root_(root), maxDepth_(maxDepth), skipDeeper_(skipDeeper) {}

  bool null() { return put(BasicJson(nullptr)); }
  bool boolean(bool v) { return put(BasicJson(v)); }
  bool number_integer(number_integer_t v) { return put(BasicJson(v)); }
  bool number_unsigned(number_unsigned_t v) { return put(BasicJson(v)); }
  bool number_float(number_float_t v, const string_t& /*text*/) { return put(BasicJson(v)); }
  bool string(string_t& v) { return put(BasicJson(std::move(v))); }
  bool binary(binary_t& /*v*/) { return false; }  // JSON text has no binary values
  bool key(string_t& k) {
    if (skipped_ == 0) key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t /*size*/) { return open(BasicJson::object()); }
  bool start_array(std::size_t /*size*/) { return open(BasicJson::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t /*position*/, const std::string& /*token*/,
                   const typename BasicJson::exception& e) {
    error_ = e.what();
    return false;
  }

  bool tooDeep() const { return tooDeep_; }
  const std::string& error() const { return error_; }

 private:
  // Where a new value goes: the root, the end of the open array, or the open object's key.
  BasicJson* insert(BasicJson&& v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    BasicJson& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    BasicJson& slot = parent[key_];  // a repeated key: the last value wins, as in nlohmann
    slot = std::move(v);
    return &slot;
  }
  bool put(BasicJson&& v) {
    if (skipped_ == 0) insert(std::move(v));
    return true;
  }
  // Pointers into open containers stay valid: a container only grows while it is the innermost.
  bool open(BasicJson&& container) {
    if (skipped_ > 0 || open_.size() >= maxDepth_) {
      if (!skipDeeper_) {
        tooDeep_ = true;
        return false;
      }
      ++skipped_;
      return true;
    }
    open_.push_back(insert(std::move(container)));
    return true;
  }
  bool close() {
    if (skipped_ > 0) {
      --skipped_;
    } else {
      open_.pop_back();
    }
    return true;
  }

  BasicJson& root_;
  std::size_t maxDepth_;
  bool skipDeeper_;
  std::vector<BasicJson*> open_;
  std::size_t skipped_ = 0;  // levels of a container being left out
  string_t key_;
  bool tooDeep_ = false;
  std::string error_;
};

template <typename BasicJson>
BasicJson parseBounded(std::string_view text, std::string_view what) {
  BasicJson root;
  BoundedBuilder<BasicJson> builder(root, kMaxJsonDepth, false);
  bool ok = false;
  std::string msg;
  try {
    ok = BasicJson::sax_parse(text.begin(), text.end(), &builder);
    msg = builder.error();
  } catch (const typename BasicJson::exception& e) {
    msg = e.what();
  }
  if (ok) return root;
  if (builder.tooDeep()) {
    throw Error(Code::DecodeFailure, std::string(what) + " is nested deeper than " +
                                         std::to_string(kMaxJsonDepth) +
                                         " levels of arrays and objects");
  }
  // nlohmann prefixes "[json.exception.parse_error.101] "; keep the human part. A number too
  // large for a double (1e999) is reported the same way ("number overflow").
  if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
  throw Error(Code::DecodeFailure, std::string(what) + " is not valid JSON: " + msg);
}

}  // namespace

json parseJson(std::string_view text, std::string_view what) {
  return parseBounded<json>(text, what);
}

nlohmann::ordered_json parseOrderedJson(std::string_view text, std::string_view what) {
  return parseBounded<nlohmann::ordered_json>(text, what);
}

json parseJsonTop(std::string_view text, std::size_t depth) noexcept {
  try {
    json root;
    BoundedBuilder<json> builder(root, depth, true);
    if (json::sax_parse(text.begin(), text.end(), &builder)) return root;
  } catch (const std::exception&) {
  }
  return json(json::value_t::discarded);
}

const json* member(const json& obj, std::string_view key, std::string_view where) {
  if (!obj.is_object()) {
    throw Error(Code::InvalidConfig, (where.empty() ? std::string("config") : std::string(where)) +
                                         ": expected an object, got " + std::string(typeName(obj)));
  }
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

namespace {
[[noreturn]] void wrongType(std::string_view where, std::string_view key, std::string_view want,
                            const json& got, Code code) {
  throw Error(code, fieldPath(where, key) + ": expected " + std::string(want) + ", got " +
                        std::string(typeName(got)));
}
}  // namespace

std::optional<std::string> optString(const json& obj, std::string_view key, std::string_view where,
                                     Code code) {
  const json* m = member(obj, key, where);
  if (m == nullptr) return std::nullopt;
  if (!m->is_string()) wrongType(where, key, "a string", *m, code);
  return m->get<std::string>();
}

std::string reqString(const json& obj, std::string_view key, std::string_view where, Code code) {
  auto v = optString(obj, key, where, code);
  if (!v) throw Error(code, fieldPath(where, key) + " is missing");
  return *v;
}

std::optional<bool> optBool(const json& obj, std::string_view key, std::string_view where) {
  const json* m = member(obj, key, where);
  if (m == nullptr) return std::nullopt;
  if (!m->is_boolean()) wrongType(where, key, "true or false", *m, Code::InvalidConfig);
  return m->get<bool>();
}

std::optional<std::int64_t> optInt(const json& obj, std::string_view key, std::string_view where,
                                   std::int64_t min, std::int64_t max, Code code) {
  const json* m = member(obj, key, where);
  if (m == nullptr) return std::nullopt;
  if (!m->is_number_integer()) wrongType(where, key, "an integer", *m, code);
  const auto outOfRange = [&] {
    throw Error(code, fieldPath(where, key) + ": " + m->dump() + " is out of range [" +
                          std::to_string(min) + ", " + std::to_string(max) + "]");
  };
  // Beyond int64 is beyond every range we accept: never wrapped or clamped into one.
  if (m->is_number_unsigned() &&
      m->get<std::uint64_t>() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    outOfRange();
  }
  const auto v = m->get<std::int64_t>();
  if (v < min || v > max) outOfRange();
  return v;
}

const json* optArray(const json& obj, std::string_view key, std::string_view where, Code code) {
  const json* m = member(obj, key, where);
  if (m != nullptr && !m->is_array()) wrongType(where, key, "an array", *m, code);
  return m;
}

const json* optObject(const json& obj, std::string_view key, std::string_view where, Code code) {
  const json* m = member(obj, key, where);
  if (m != nullptr && !m->is_object()) wrongType(where, key, "an object", *m, code);
  return m;
}

}  // namespace dualstack::sys

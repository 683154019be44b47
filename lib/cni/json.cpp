#include "dualstack/cni/json.hpp"

#include <limits>

namespace dualstack::cni {

std::string fieldPath(std::string_view where, std::string_view key) {
  if (where.empty()) return std::string(key);
  return std::string(where) + "." + std::string(key);
}

std::string_view typeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

json parseJson(std::string_view text, std::string_view what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double (1e999).
    std::string msg = e.what();
    // nlohmann prefixes "[json.exception.parse_error.101] "; keep the human part.
    if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
    throw Error(Code::DecodeFailure, std::string(what) + " is not valid JSON: " + msg);
  }
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
                                   std::int64_t min, std::int64_t max) {
  const json* m = member(obj, key, where);
  if (m == nullptr) return std::nullopt;
  if (!m->is_number_integer()) wrongType(where, key, "an integer", *m, Code::InvalidConfig);
  std::int64_t v = 0;
  if (m->is_number_unsigned()) {
    const auto u = m->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      v = std::numeric_limits<std::int64_t>::max();
    } else {
      v = static_cast<std::int64_t>(u);
    }
  } else {
    v = m->get<std::int64_t>();
  }
  if (v < min || v > max) {
    throw Error(Code::InvalidConfig, fieldPath(where, key) + ": " + std::to_string(v) +
                                         " is out of range [" + std::to_string(min) + ", " +
                                         std::to_string(max) + "]");
  }
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

}  // namespace dualstack::cni

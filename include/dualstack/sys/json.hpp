// Typed access to JSON config fields with errors that name the field ("ipam.dataDir: expected a
// string, got a number"), so an operator knows exactly which line of the conflist is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dualstack/sys/error.hpp"

namespace dualstack::sys {

using nlohmann::json;

// The deepest nesting of arrays and objects accepted in any JSON input. Real configs, results
// and Node objects stay below 20 levels. nlohmann/json copies, compares and serialises a tree by
// recursion, one stack frame per level, so a deeper tree (valid JSON of a few hundred KB) would
// overflow the stack in the first copy.
inline constexpr std::size_t kMaxJsonDepth = 128;

// Parses JSON text; Error(DecodeFailure) with the parser's position on failure, and for nesting
// deeper than kMaxJsonDepth ("<what> is nested deeper than 128 levels"). The parse itself keeps
// its state on the heap, and a refused document is freed before the error is thrown.
json parseJson(std::string_view text, std::string_view what);
// The same, keeping the order of object keys (for files rewritten for people to read).
nlohmann::ordered_json parseOrderedJson(std::string_view text, std::string_view what);
// Only the outer `depth` levels of the text: arrays and objects nested deeper are left out, with
// their members. A discarded value (is_discarded()) when the text is not JSON. For reading a
// few top-level fields of input that is being rejected, or of another program's error answer.
json parseJsonTop(std::string_view text, std::size_t depth = 1) noexcept;

// The member `key` of `obj` (which must be an object) or nullptr when absent or null.
// `where` names obj in messages ("ipam", "ipam.node"); an empty `where` means top level.
const json* member(const json& obj, std::string_view key, std::string_view where);

std::optional<std::string> optString(const json& obj, std::string_view key, std::string_view where,
                                     Code code = Code::InvalidConfig);
std::string reqString(const json& obj, std::string_view key, std::string_view where,
                      Code code = Code::InvalidConfig);
std::optional<bool> optBool(const json& obj, std::string_view key, std::string_view where);
// An integer within [min, max]; a fraction, or a value out of range (however large), is an error
// naming the field, never a wrapped or clamped number.
std::optional<std::int64_t> optInt(const json& obj, std::string_view key, std::string_view where,
                                   std::int64_t min, std::int64_t max,
                                   Code code = Code::InvalidConfig);
// Requires the member to be an array / object when present; returns nullptr when absent.
const json* optArray(const json& obj, std::string_view key, std::string_view where,
                     Code code = Code::InvalidConfig);
const json* optObject(const json& obj, std::string_view key, std::string_view where,
                      Code code = Code::InvalidConfig);

std::string fieldPath(std::string_view where, std::string_view key);
std::string_view typeName(const json& j);

}  // namespace dualstack::sys

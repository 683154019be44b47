// Typed access to JSON config fields with errors that name the field ("ipam.dataDir: expected a
// string, got a number"), so an operator knows exactly which line of the conflist is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"

namespace dualstack::cni {

using nlohmann::json;

// Parses JSON text; Error(DecodeFailure) with the parser's position on failure.
json parseJson(std::string_view text, std::string_view what);

// The member `key` of `obj` (which must be an object) or nullptr when absent or null.
// `where` names obj in messages ("ipam", "ipam.node"); an empty `where` means top level.
const json* member(const json& obj, std::string_view key, std::string_view where);

std::optional<std::string> optString(const json& obj, std::string_view key, std::string_view where,
                                     Code code = Code::InvalidConfig);
std::string reqString(const json& obj, std::string_view key, std::string_view where,
                      Code code = Code::InvalidConfig);
std::optional<bool> optBool(const json& obj, std::string_view key, std::string_view where);
std::optional<std::int64_t> optInt(const json& obj, std::string_view key, std::string_view where,
                                   std::int64_t min, std::int64_t max);
// Requires the member to be an array / object when present; returns nullptr when absent.
const json* optArray(const json& obj, std::string_view key, std::string_view where,
                     Code code = Code::InvalidConfig);
const json* optObject(const json& obj, std::string_view key, std::string_view where,
                      Code code = Code::InvalidConfig);

std::string fieldPath(std::string_view where, std::string_view key);
std::string_view typeName(const json& j);

}  // namespace dualstack::cni

// The base layer's JSON field access (sys/json.hpp), under the names the CNI layer and the
// layers above it use.
#pragma once

#include "dualstack/cni/error.hpp"
#include "dualstack/sys/json.hpp"

namespace dualstack::cni {

using nlohmann::json;
using sys::fieldPath;
using sys::kMaxJsonDepth;
using sys::member;
using sys::optArray;
using sys::optBool;
using sys::optInt;
using sys::optObject;
using sys::optString;
using sys::parseJson;
using sys::parseJsonTop;
using sys::parseOrderedJson;
using sys::reqString;
using sys::typeName;

}  // namespace dualstack::cni

// The error type of the CNI layer and the layers above it is the base layer's (sys/error.hpp):
// the same class, named here as the CNI specification's vocabulary has it.
#pragma once

#include "dualstack/sys/error.hpp"

namespace dualstack::cni {

using sys::Code;
using sys::errnoError;
using sys::Error;
using sys::ErrorList;

}  // namespace dualstack::cni

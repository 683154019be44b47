// Object names as the API server validates them (RFC 1123, lower case).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dualstack::k8s {

// A DNS label: 1 to 63 of [a-z0-9-], not starting or ending with '-'. Namespace names.
bool validDnsLabel(std::string_view name);

// A DNS subdomain: at most 253 characters, labels joined by '.'. Node and service account names.
bool validDnsSubdomain(std::string_view name);

inline bool validNodeName(std::string_view name) { return validDnsSubdomain(name); }

struct ServiceAccountRef {
  std::string ns;
  std::string name;
};

// "NAMESPACE/NAME" of a service account; nullopt when it is not of that form or a part is not a
// valid name.
std::optional<ServiceAccountRef> parseServiceAccount(std::string_view text);

}  // namespace dualstack::k8s

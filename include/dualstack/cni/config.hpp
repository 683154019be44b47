// The network configuration a plugin receives on stdin.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/cni/env.hpp"

namespace dualstack::cni {

struct Attachment {
  std::string containerId;
  std::string ifname;
  friend bool operator==(const Attachment&, const Attachment&) = default;
};

struct NetConf {
  std::string cniVersion;
  std::string name;
  std::string type;
  nlohmann::json raw;  // the complete config as received; delegates get it verbatim
  // Parts of raw, validated by parseNetConf; read in place, never copied out of the tree.
  const nlohmann::json& ipam() const;           // raw["ipam"], or null
  const nlohmann::json& prevResult() const;     // raw["prevResult"], or null
  const nlohmann::json& runtimeConfig() const;  // raw["runtimeConfig"], or an empty object
  const nlohmann::json& args() const;           // raw["args"], or an empty object
  // GC only: the attachments still valid, from cni.dev/valid-attachments (or the older
  // cni.dev/attachments). Empty when the list is empty, null or missing: libcni's GCNetworkList
  // omits it when its caller names no attachment, and means that none is valid (see config.cpp).
  std::vector<Attachment> validAttachments;
};

// Parses and validates the config for `command`: JSON syntax and nesting (DecodeFailure, see
// kMaxJsonDepth), cniVersion supported and the verb allowed for it (IncompatibleVersion), name,
// type and the JSON types of ipam, runtimeConfig, args (InvalidConfig), prevResult
// (DecodeFailure), and for GC the attachment list (InvalidConfig naming the entry; also for a key
// that looks like a misspelled list, and for two lists that disagree).
NetConf parseNetConf(std::string_view text, Command command);

// The largest config accepted on stdin; more is an error, not a truncation.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;

}  // namespace dualstack::cni

#include "dualstack/cni/config.hpp"

#include <algorithm>
#include <cctype>
#include <tuple>

#include "dualstack/cni/json.hpp"
#include "dualstack/cni/result.hpp"
#include "dualstack/cni/version.hpp"

namespace dualstack::cni {

namespace {

std::string supportedList() {
  std::string s;
  for (auto v : kSupportedVersions) {
    if (!s.empty()) s += ", ";
    s += v;
  }
  return s;
}

std::vector<Attachment> parseAttachments(const json& list, std::string_view key) {
  std::vector<Attachment> out;
  std::size_t i = 0;
  for (const auto& item : list) {
    const std::string where = std::string(key) + "[" + std::to_string(i++) + "]";
    Attachment a{reqString(item, "containerID", where), reqString(item, "ifname", where)};
    if (!validContainerId(a.containerId)) {
      throw Error(Code::InvalidConfig, where + ".containerID is not a valid container ID");
    }
    if (!validIfname(a.ifname)) {
      throw Error(Code::InvalidConfig, where + ".ifname is not a valid interface name");
    }
    out.push_back(std::move(a));
  }
  return out;
}

constexpr std::string_view kValidAttachmentsKey = "cni.dev/valid-attachments";
constexpr std::string_view kOldAttachmentsKey = "cni.dev/attachments";  // libcni before 1.2

std::string lowered(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// GC's list of the attachments still valid. A missing (or null) list means that none is: that is
// what libcni's GCNetworkList sends when called without arguments (as cnitool's `gc` does), after
// it has sent DEL for every attachment in its cache, and how plugins written in Go decode it. The
// spec asks runtimes for the list, but the library nearly every runtime uses omits it there, so
// any other reading would leave the plugins disagreeing with their callers.
//
// Because a missing list releases everything, anything that looks like a misspelled list is
// refused rather than ignored: an unknown key under cni.dev/ (reserved for the protocol) or a key
// that names attachments. So are two lists that disagree.
std::vector<Attachment> parseValidAttachments(const json& raw) {
  for (const auto& [key, value] : raw.items()) {
    if (key == kValidAttachmentsKey || key == kOldAttachmentsKey) continue;
    const std::string lower = lowered(key);
    if (lower.rfind("cni.dev/", 0) == 0 || lower.find("attachment") != std::string::npos) {
      std::string shown = key.substr(0, 64);
      for (auto& c : shown) {
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      }
      throw Error(Code::InvalidConfig,
                  "GC: unknown key \"" + shown + "\"; the attachments still valid go in " +
                      std::string(kValidAttachmentsKey) +
                      " (a GC without it releases every attachment of the network)");
    }
  }
  const json* list = optArray(raw, kValidAttachmentsKey, "");
  const json* old = optArray(raw, kOldAttachmentsKey, "");
  std::vector<Attachment> valid;
  if (list != nullptr) valid = parseAttachments(*list, kValidAttachmentsKey);
  if (old != nullptr) {
    std::vector<Attachment> fromOld = parseAttachments(*old, kOldAttachmentsKey);
    if (list == nullptr) return fromOld;
    auto sorted = [](std::vector<Attachment> v) {
      std::sort(v.begin(), v.end(), [](const Attachment& a, const Attachment& b) {
        return std::tie(a.containerId, a.ifname) < std::tie(b.containerId, b.ifname);
      });
      v.erase(std::unique(v.begin(), v.end()), v.end());
      return v;
    };
    if (sorted(valid) != sorted(fromOld)) {
      throw Error(Code::InvalidConfig, std::string(kValidAttachmentsKey) + " and " +
                                           std::string(kOldAttachmentsKey) +
                                           " list different attachments; send one list");
    }
  }
  return valid;
}

// cniVersions (CNI 1.1) lists every version the config is valid for. A runtime picks cniVersion
// from it, so a config whose cniVersion is not listed contradicts itself.
void checkCniVersions(const json& raw, const std::string& cniVersion) {
  const json* list = optArray(raw, "cniVersions", "");
  if (list == nullptr) return;
  bool any = false;
  bool listed = false;
  std::string shown;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    if (!v.is_string()) {
      throw Error(Code::InvalidConfig, "cniVersions[" + std::to_string(i) +
                                           "]: expected a string, got " + std::string(typeName(v)));
    }
    const auto& text = v.get_ref<const std::string&>();
    any = any || isSupportedVersion(text);
    listed = listed || text == cniVersion;
    if (i < 8) shown += (i == 0 ? "" : ", ") + text.substr(0, 16);
  }
  if (!any) {
    throw Error(Code::IncompatibleVersion, "cniVersions [" + shown +
                                               "] names no version this plugin supports (" +
                                               supportedList() + ")");
  }
  if (!listed) {
    throw Error(Code::InvalidConfig,
                "cniVersion " + cniVersion + " is not one of cniVersions [" + shown + "]");
  }
}

}  // namespace

namespace {

const json& memberOr(const json& raw, std::string_view key, const json& fallback) {
  if (!raw.is_object()) return fallback;
  const auto it = raw.find(key);
  return it == raw.end() || it->is_null() ? fallback : *it;
}

const json kNull;
const json kEmptyObject = json::object();

}  // namespace

const json& NetConf::ipam() const { return memberOr(raw, "ipam", kNull); }
const json& NetConf::prevResult() const { return memberOr(raw, "prevResult", kNull); }
const json& NetConf::runtimeConfig() const { return memberOr(raw, "runtimeConfig", kEmptyObject); }
const json& NetConf::args() const { return memberOr(raw, "args", kEmptyObject); }

NetConf parseNetConf(std::string_view text, Command command) {
  if (text.size() > kMaxConfigBytes) {
    throw Error(Code::DecodeFailure, "network config on stdin is larger than " +
                                         std::to_string(kMaxConfigBytes) + " bytes");
  }
  NetConf conf;
  conf.raw = parseJson(text, "network config on stdin");
  if (!conf.raw.is_object()) {
    throw Error(Code::DecodeFailure, "network config on stdin must be a JSON object, got " +
                                         std::string(typeName(conf.raw)));
  }
  const json& raw = conf.raw;

  // A cniVersion that is not a string cannot be decoded at all, as with libcni's skel.
  auto version = optString(raw, "cniVersion", "", Code::DecodeFailure);
  if (!version) {
    throw Error(Code::IncompatibleVersion,
                "cniVersion is missing; this plugin supports " + supportedList());
  }
  if (!isSupportedVersion(*version)) {
    throw Error(Code::IncompatibleVersion, "cniVersion \"" + version->substr(0, 32) +
                                               "\" is not supported; this plugin supports " +
                                               supportedList());
  }
  conf.cniVersion = *version;
  checkCniVersions(raw, conf.cniVersion);
  if (command == Command::Check && !versionAtLeast(conf.cniVersion, "0.4.0")) {
    throw Error(Code::IncompatibleVersion,
                "CHECK needs cniVersion 0.4.0 or later, the config has " + conf.cniVersion);
  }
  if ((command == Command::Gc || command == Command::Status) &&
      !versionAtLeast(conf.cniVersion, "1.1.0")) {
    throw Error(Code::IncompatibleVersion, std::string(commandName(command)) +
                                               " needs cniVersion 1.1.0 or later, the config has " +
                                               conf.cniVersion);
  }

  conf.name = reqString(raw, "name", "");
  if (!validNetworkName(conf.name)) {
    std::string shown = conf.name.substr(0, 64);
    for (auto& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20) c = '?';
    }
    throw Error(Code::InvalidConfig,
                "name \"" + shown +
                    "\" is not a valid network name: it must match [a-zA-Z0-9][a-zA-Z0-9_.-]* "
                    "and be at most 64 characters, because it names a directory");
  }
  conf.type = optString(raw, "type", "").value_or("");

  optObject(raw, "ipam", "");
  optObject(raw, "runtimeConfig", "");
  optObject(raw, "args", "");
  if (const json* prev = member(raw, "prevResult", "")) {
    if (!prev->is_object()) {
      throw Error(Code::DecodeFailure,
                  "prevResult: expected an object, got " + std::string(typeName(*prev)));
    }
    Result::fromJson(*prev, "prevResult");  // validates; users parse it again where needed
  }

  if (command == Command::Gc) conf.validAttachments = parseValidAttachments(raw);
  return conf;
}

}  // namespace dualstack::cni

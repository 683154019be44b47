#include "dualstack/cni/config.hpp"

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
    throw Error(Code::InvalidConfig, "cniVersion " + cniVersion + " is not one of cniVersions [" +
                                         shown + "]");
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

  if (command == Command::Gc) {
    // libcni before 1.2 named the list cni.dev/attachments.
    const json* list = optArray(raw, "cni.dev/valid-attachments", "");
    const char* key = "cni.dev/valid-attachments";
    if (list == nullptr) {
      list = optArray(raw, "cni.dev/attachments", "");
      key = "cni.dev/attachments";
    }
    if (list != nullptr) conf.validAttachments = parseAttachments(*list, key);
  }
  return conf;
}

}  // namespace dualstack::cni

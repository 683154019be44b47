#include "dualstack/k8s/kubeconfig.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <utility>

#include "dualstack/sys/env.hpp"
#include "dualstack/sys/error.hpp"
#include "files.hpp"

namespace dualstack::k8s {

using sys::Code;
using sys::Error;

namespace {

constexpr std::size_t kMaxKubeconfig = 4U << 20;
constexpr std::size_t kMaxToken = 64U << 10;

std::string inQuotes(std::string_view s) { return "\"" + std::string(s.substr(0, 100)) + "\""; }

std::string trimmed(std::string_view s) {
  const auto ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

std::string field(const std::string& where, const char* key) {
  return where.empty() ? std::string(key) : where + "." + key;
}

bool headerSafe(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

// Standard base64 with padding, as kubectl reads the *-data fields; line breaks and spaces are
// skipped. nullopt for anything else. (yaml-cpp's decoder indexes a table with signed chars and
// reads out of bounds on bytes >= 0x80.)
std::optional<std::string> decodeBase64(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t acc = 0;
  int have = 0;     // sextets in acc
  int padding = 0;  // '=' seen
  for (const char c : text) {
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int v = value(c);
    if (v < 0 || padding > 0) return std::nullopt;  // a bad byte, or data after padding
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    if (++have == 4) {
      out += static_cast<char>((acc >> 16) & 0xff);
      out += static_cast<char>((acc >> 8) & 0xff);
      out += static_cast<char>(acc & 0xff);
      acc = 0;
      have = 0;
    }
  }
  // A final group of 2 or 3 sextets needs exactly 2 or 1 '='; a complete input needs none.
  if (have == 0 && padding == 0) return out;
  if (have == 2 && padding == 2) {
    out += static_cast<char>((acc >> 4) & 0xff);
    return out;
  }
  if (have == 3 && padding == 1) {
    out += static_cast<char>((acc >> 10) & 0xff);
    out += static_cast<char>((acc >> 2) & 0xff);
    return out;
  }
  return std::nullopt;
}

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {
    const auto slash = path.rfind('/');
    dir_ = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  }

  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(Code::InvalidConfig, "kubeconfig " + path_ + ": " + msg);
  }

  // The string value of map[key]; "" when absent or null. Never shows the value in messages.
  std::string str(const YAML::Node& map, const char* key, const std::string& where) const {
    const YAML::Node v = map[key];
    if (!v || v.IsNull()) return {};
    if (!v.IsScalar()) fail(field(where, key) + ": expected a string");
    return v.Scalar();
  }

  bool boolean(const YAML::Node& map, const char* key, const std::string& where) const {
    const YAML::Node v = map[key];
    if (!v || v.IsNull()) return false;
    bool out = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, out)) {
      fail(field(where, key) + ": expected true or false");
    }
    return out;
  }

  // A file name from the kubeconfig, relative ones resolved against its directory.
  std::string file(const YAML::Node& map, const char* key, const std::string& where) const {
    std::string p = str(map, key, where);
    // open(2) would stop at a NUL ("\0" in YAML) and read another file.
    if (p.find('\0') != std::string::npos) fail(field(where, key) + ": not a file name");
    if (!p.empty() && p[0] != '/') p = dir_ + "/" + p;
    return p;
  }

  std::string base64(const YAML::Node& map, const char* key, const std::string& where) const {
    const std::string text = str(map, key, where);
    if (text.empty()) return {};
    auto bytes = decodeBase64(text);
    if (!bytes || bytes->empty()) fail(field(where, key) + ": not valid base64");
    return std::move(*bytes);
  }

  // The `item` map of the entry named `name` in the list `list` ("clusters", "cluster").
  std::pair<YAML::Node, std::string> named(const YAML::Node& root, const char* list,
                                           const char* item, const std::string& name) const {
    const YAML::Node entries = root[list];
    if (entries && !entries.IsNull() && !entries.IsSequence())
      fail(std::string(list) + ": expected a list");
    if (entries && entries.IsSequence()) {
      for (std::size_t i = 0; i < entries.size(); ++i) {
        const YAML::Node e = entries[i];
        const std::string where = std::string(list) + "[" + std::to_string(i) + "]";
        if (!e.IsMap()) fail(where + ": expected a map");
        if (str(e, "name", where) != name) continue;
        const YAML::Node body = e[item];
        if (!body || !body.IsMap()) fail(where + "." + item + ": expected a map");
        return {body, where + "." + item};
      }
    }
    fail(std::string(item) + " " + inQuotes(name) + " is not in " + list);
  }

 private:
  const std::string& path_;
  std::string dir_;
};

}  // namespace

std::string Kubeconfig::credentialDescription() const {
  const std::string user = "kubeconfig user " + inQuotes(userName) + " in " + path;
  std::string cert;
  if (!clientCertFile.empty() || !clientCertData.empty()) {
    cert = "client certificate " +
           (clientCertData.empty() ? clientCertFile : std::string("client-certificate-data"));
  }
  std::string desc;
  if (!tokenFile.empty()) {
    desc = "token file " + tokenFile;
  } else if (!token.empty()) {
    desc = "token";
  }
  if (!cert.empty()) desc += (desc.empty() ? "" : " and ") + cert;
  if (desc.empty()) return "no credentials (anonymous; " + user + " has none)";
  return desc + " of " + user;
}

namespace {

YAML::Node loadYaml(std::string_view text, const Reader& r) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp parses recursively and stops at about 500 levels (its message is "bad file").
    r.fail("not valid YAML or JSON: nested too deeply (about 500 levels) at line " +
           std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1));
  } catch (const YAML::Exception& e) {
    // yaml-cpp's messages carry the position and the kind of problem, never the content.
    r.fail("not valid YAML or JSON: " + e.msg + " at line " + std::to_string(e.mark.line + 1) +
           ", column " + std::to_string(e.mark.column + 1));
  }
}

// The current context's cluster: an https:// server and how to trust it.
void readCluster(const Reader& r, const YAML::Node& root, Kubeconfig& kc) {
  const auto [cluster, clusterWhere] = r.named(root, "clusters", "cluster", kc.clusterName);
  kc.server = r.str(cluster, "server", clusterWhere);
  while (!kc.server.empty() && kc.server.back() == '/') kc.server.pop_back();
  // Plain http would send the bearer token (or the whole session) in cleartext.
  if (kc.server.rfind("https://", 0) != 0) {
    r.fail(clusterWhere + ".server: " + (kc.server.empty() ? "missing" : inQuotes(kc.server)) +
           " is not an https:// URL (credentials are never sent over plain http)");
  }
  kc.caData = r.base64(cluster, "certificate-authority-data", clusterWhere);
  if (kc.caData.empty()) kc.caFile = r.file(cluster, "certificate-authority", clusterWhere);
  kc.insecureSkipTlsVerify = r.boolean(cluster, "insecure-skip-tls-verify", clusterWhere);
  if (kc.insecureSkipTlsVerify && (!kc.caData.empty() || !kc.caFile.empty())) {
    // kubectl refuses this combination too.
    r.fail(clusterWhere +
           ": insecure-skip-tls-verify and a certificate-authority exclude each "
           "other");
  }
}

// The current context's user: a token, a token file or a client certificate and key.
void readUser(const Reader& r, const YAML::Node& root, Kubeconfig& kc) {
  const auto [user, userWhere] = r.named(root, "users", "user", kc.userName);
  for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
    const YAML::Node v = user[unsupported];
    if (v && !v.IsNull()) {
      r.fail(userWhere + "." + unsupported +
             " is not supported by dualstack-ipam: give the user a token, tokenFile or "
             "client-certificate and client-key");
    }
  }
  kc.token = r.str(user, "token", userWhere);
  if (!headerSafe(kc.token)) r.fail(userWhere + ".token contains control characters");
  kc.tokenFile = r.file(user, "tokenFile", userWhere);
  kc.clientCertData = r.base64(user, "client-certificate-data", userWhere);
  if (kc.clientCertData.empty()) {
    kc.clientCertFile = r.file(user, "client-certificate", userWhere);
  }
  kc.clientKeyData = r.base64(user, "client-key-data", userWhere);
  if (kc.clientKeyData.empty()) kc.clientKeyFile = r.file(user, "client-key", userWhere);
  const bool hasCert = !kc.clientCertData.empty() || !kc.clientCertFile.empty();
  const bool hasKey = !kc.clientKeyData.empty() || !kc.clientKeyFile.empty();
  if (hasCert != hasKey) {
    r.fail(userWhere + ": " +
           (hasCert ? "client-certificate without client-key"
                    : "client-key without client-certificate"));
  }
}

}  // namespace

Kubeconfig parseKubeconfig(std::string_view text, const std::string& path) {
  Kubeconfig kc;
  kc.path = path;
  const Reader r(kc.path);
  const YAML::Node root = loadYaml(text, r);
  try {
    if (!root.IsMap()) r.fail("expected a map with clusters, contexts, users and current-context");
    kc.contextName = r.str(root, "current-context", "");
    if (kc.contextName.empty()) r.fail("current-context is not set");
    const auto [context, contextWhere] = r.named(root, "contexts", "context", kc.contextName);
    kc.clusterName = r.str(context, "cluster", contextWhere);
    if (kc.clusterName.empty()) r.fail(contextWhere + ".cluster is not set");
    kc.userName = r.str(context, "user", contextWhere);
    readCluster(r, root, kc);
    if (!kc.userName.empty()) readUser(r, root, kc);
  } catch (const YAML::Exception& e) {
    r.fail(std::string("unexpected structure: ") + e.msg);
  }
  return kc;
}

Kubeconfig loadKubeconfig(const std::string& path) {
  return parseKubeconfig(detail::readFile(path, "kubeconfig", kMaxKubeconfig), path);
}

Kubeconfig inClusterConfig(const sys::EnvLookup& env, const std::string& dir) {
  auto lookup = [&](const char* name) -> std::string {
    if (env) return env(name).value_or("");
    const char* v = std::getenv(name);
    return v != nullptr ? v : "";
  };
  const std::string host = lookup("KUBERNETES_SERVICE_HOST");
  const std::string port = lookup("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    throw Error(Code::InvalidConfig,
                "no in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                "are not set (outside a pod, give a kubeconfig file)");
  }
  const bool hostOk =
      host.size() <= 253 && host.find_first_of("/@?#[] \t\r\n") == std::string::npos;
  const bool portOk = port.size() <= 5 &&
                      port.find_first_not_of("0123456789") == std::string::npos &&
                      std::stoi(port) >= 1 && std::stoi(port) <= 65535;
  if (!hostOk || !portOk) {
    throw Error(Code::InvalidConfig, "no in-cluster configuration: KUBERNETES_SERVICE_HOST " +
                                         inQuotes(host) + " and KUBERNETES_SERVICE_PORT " +
                                         inQuotes(port) + " do not make a URL");
  }
  Kubeconfig kc;
  kc.path = dir + " (in-cluster service account)";
  kc.contextName = kc.clusterName = kc.userName = "in-cluster";
  // An IPv6 service address needs brackets in a URL.
  kc.server =
      "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  kc.caFile = dir + "/ca.crt";
  kc.tokenFile = dir + "/token";
  // Read both now: a pod without its service account mounted fails at start, not at the first
  // request.
  bearerToken(kc);
  detail::readFile(kc.caFile, "service account CA", kMaxKubeconfig);
  return kc;
}

std::string bearerToken(const Kubeconfig& kc) {
  if (kc.tokenFile.empty()) return kc.token;
  std::string token = trimmed(detail::readFile(kc.tokenFile, "token file", kMaxToken));
  if (token.empty()) {
    throw Error(Code::IoFailure,
                "token file " + kc.tokenFile + " (kubeconfig " + kc.path + ") is empty");
  }
  if (!headerSafe(token)) {
    throw Error(Code::IoFailure, "token file " + kc.tokenFile + " contains control characters");
  }
  return token;
}

}  // namespace dualstack::k8s

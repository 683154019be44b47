#include "dualstack/install/kubeconfig.hpp"

#include <nlohmann/json.hpp>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/json.hpp"

namespace dualstack::install {

using sys::Code;
using sys::Error;

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// base64url without padding (RFC 7515), as JWT segments are; nullopt for other characters.
std::optional<std::string> base64UrlDecode(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = 0;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-' || c == '+')
      v = 62;
    else if (c == '_' || c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// The end of the year 9999 in seconds since the epoch: later NumericDates are not real times.
constexpr double kMaxNumericDate = 253402300799.0;

// A NumericDate claim (RFC 7519: seconds since the epoch, possibly fractional). One that is not
// a number between 0 and kMaxNumericDate (1e300 in a broken token) has no integer to convert to:
// it is left out, and `problem` says why.
std::optional<std::int64_t> numericClaim(const nlohmann::json& claims, const char* key,
                                         std::string& problem) {
  const auto it = claims.find(key);
  if (it == claims.end() || it->is_null()) return std::nullopt;
  if (it->is_number()) {
    const double v = it->get<double>();
    if (v >= 0 && v <= kMaxNumericDate) return static_cast<std::int64_t>(v);  // false for NaN
  }
  if (problem.empty()) {
    problem = std::string("its ") + key + " claim " + it->dump().substr(0, 32) +
              " is not a time (seconds since 1970, before the year 10000)";
  }
  return std::nullopt;
}

}  // namespace

std::string base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const auto n = static_cast<std::uint32_t>(static_cast<unsigned char>(data[i]) << 16 |
                                              static_cast<unsigned char>(data[i + 1]) << 8 |
                                              static_cast<unsigned char>(data[i + 2]));
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += kAlphabet[n >> 6 & 63];
    out += kAlphabet[n & 63];
  }
  if (i < data.size()) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(data[i]) << 16);
    if (i + 1 < data.size())
      n |= static_cast<std::uint32_t>(static_cast<unsigned char>(data[i + 1]) << 8);
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += i + 1 < data.size() ? kAlphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

TokenTimes tokenTimes(std::string_view token) {
  // header.payload.signature; only the payload matters, and it is not verified: the API server
  // does that. We only learn when to look for the next token.
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos) return {};
  const auto payload = base64UrlDecode(token.substr(first + 1, second - first - 1));
  if (!payload) return {};
  // Only the top-level claims matter; what is nested in them is not kept.
  const auto claims = sys::parseJsonTop(*payload, 2);
  if (!claims.is_object()) return {};
  TokenTimes t;
  t.issuedAt = numericClaim(claims, "iat", t.problem);
  t.expiresAt = numericClaim(claims, "exp", t.problem);
  return t;
}

std::string serverUrl(std::string_view host, std::string_view port) {
  const bool v6 = host.find(':') != std::string_view::npos && host.front() != '[';
  return "https://" + (v6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" +
         std::string(port);
}

std::string renderKubeconfig(const std::string& server, const std::string& caPem,
                             const std::string& token, const std::string& tokenSource,
                             std::string_view writer) {
  if (server.rfind("https://", 0) != 0) {
    throw Error(Code::InvalidConfig, "API server \"" + server.substr(0, 100) +
                                         "\" is not an https:// URL: the token would be sent in "
                                         "cleartext");
  }
  for (char c : token) {
    // A bearer token is printable ASCII without spaces or quotes (RFC 6750's b64token and more).
    if (c <= ' ' || c > '~' || c == '"' || c == '\\') {
      throw Error(Code::InvalidConfig,
                  tokenSource + " holds a character a bearer token cannot contain");
    }
  }
  for (char c : server) {
    if (c <= ' ' || c > '~' || c == '"' || c == '\\') {
      throw Error(Code::InvalidConfig, "API server URL \"" + server + "\" is not a valid URL");
    }
  }
  // JSON strings are valid YAML scalars: quoting is then nlohmann's job.
  const auto q = [](const std::string& s) { return nlohmann::json(s).dump(); };
  return "# Written by " + std::string(writer) +
         ". Do not edit: changes are overwritten.\n"
         "apiVersion: v1\n"
         "kind: Config\n"
         "clusters:\n"
         "- name: cluster\n"
         "  cluster:\n"
         "    server: " +
         q(server) +
         "\n"
         "    certificate-authority-data: " +
         q(base64Encode(caPem)) +
         "\n"
         "users:\n"
         "- name: dualstack-cni\n"
         "  user:\n"
         "    token: " +
         q(token) +
         "\n"
         "contexts:\n"
         "- name: dualstack-cni\n"
         "  context:\n"
         "    cluster: cluster\n"
         "    user: dualstack-cni\n"
         "current-context: dualstack-cni\n";
}

}  // namespace dualstack::install

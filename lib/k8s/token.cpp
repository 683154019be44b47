#include "dualstack/k8s/token.hpp"

#include <ctime>

#include <nlohmann/json.hpp>

#include "client.hpp"
#include "dualstack/k8s/api.hpp"
#include "dualstack/k8s/names.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/json.hpp"
#include "pruned.hpp"

namespace dualstack::k8s {

using nlohmann::json;
using sys::Code;
using sys::Error;

namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::int64_t parseRfc3339(std::string_view s) {
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
  if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mon) ||
      s[7] != '-' || !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s, 11, 2, hour) || s[13] != ':' || !digits(s, 14, 2, min) || s[16] != ':' ||
      !digits(s, 17, 2, sec)) {
    return -1;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) return -1;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const std::size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == from) return -1;
  }
  std::int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !digits(s, i + 4, 2, om) || oh > 23 || om > 59) {
      return -1;
    }
    offset = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return -1;
  }
  if (i != s.size()) return -1;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  return static_cast<std::int64_t>(::timegm(&tm)) - offset;
}

TokenResult requestToken(const Kubeconfig& kc, std::string_view ns, std::string_view sa,
                         std::chrono::seconds expiration, std::chrono::milliseconds timeout) {
  if (!validDnsLabel(ns)) {
    throw Error(Code::InvalidConfig, "service account namespace \"" +
                                         std::string(ns.substr(0, 100)) +
                                         "\" is not a valid namespace name");
  }
  if (!validDnsSubdomain(sa)) {
    throw Error(Code::InvalidConfig, "service account name \"" + std::string(sa.substr(0, 300)) +
                                         "\" is not a valid name");
  }
  const std::string account = std::string(ns) + "/" + std::string(sa);
  const std::string path =
      "/api/v1/namespaces/" + std::string(ns) + "/serviceaccounts/" + std::string(sa) + "/token";
  HttpRequest http = detail::apiRequest(kc, "POST", path, timeout);
  http.headers.push_back("Content-Type: application/json");
  http.body = json{{"apiVersion", "authentication.k8s.io/v1"},
                   {"kind", "TokenRequest"},
                   {"spec", {{"expirationSeconds", expiration.count()}}}}
                  .dump();
  http.maxBody = 1U << 20;

  HttpResponse response;
  try {
    response = httpRequest(http);
  } catch (const HttpError& e) {
    detail::throwNoAnswer(e, kc, http);
  }
  const std::string server = detail::serverName(kc);
  const std::string subject = "a token request for service account " + account;
  if (response.status == 201 || response.status == 200) {
    static const detail::KeepPaths paths = [] {
      detail::KeepPaths k;
      k.keep({"status", "token"}).keep({"status", "expirationTimestamp"});
      return k;
    }();
    const std::string where = server + "'s answer to " + subject;
    const json j = detail::parsePruned(response.body, paths, where);
    const json* status =
        j.is_object() ? sys::optObject(j, "status", where, Code::DecodeFailure) : nullptr;
    if (status == nullptr) throw Error(Code::DecodeFailure, where + ": no status");
    TokenResult out;
    out.token = sys::reqString(*status, "token", where + ".status", Code::DecodeFailure);
    const std::string expires =
        sys::reqString(*status, "expirationTimestamp", where + ".status", Code::DecodeFailure);
    out.expiresUnix = parseRfc3339(expires);
    if (out.token.empty() || out.token.find_first_of(" \t\r\n") != std::string::npos) {
      throw Error(Code::DecodeFailure, where + ": status.token is empty or not one word");
    }
    if (out.expiresUnix < 0) {
      throw Error(Code::DecodeFailure, where + ": status.expirationTimestamp \"" +
                                           expires.substr(0, 40) + "\" is not an RFC 3339 time");
    }
    return out;
  }
  if (response.status == 404) {
    throw Error(Code::InvalidConfig, server + " has no service account " + account + " (" +
                                         detail::statusMessage(response.body) + ")");
  }
  if (response.status == 400 || response.status == 422) {
    throw Error(Code::InvalidConfig,
                server + " refused " + subject + ": " + detail::statusMessage(response.body));
  }
  detail::throwForStatus(response.status, response.body, kc, http, subject,
                         "`create` on `serviceaccounts/token` for " + account);
}

}  // namespace dualstack::k8s

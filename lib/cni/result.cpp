#include "dualstack/cni/result.hpp"

#include "dualstack/cni/json.hpp"
#include "dualstack/cni/version.hpp"

namespace dualstack::cni {

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& why) {
  throw Error(Code::DecodeFailure, field + ": " + why);
}

std::optional<int> optSmallInt(const json& obj, const char* key, const std::string& where) {
  const json* m = member(obj, key, where);
  if (m == nullptr) return std::nullopt;
  if (!m->is_number_integer()) bad(fieldPath(where, key), "expected an integer");
  const auto v = m->get<std::int64_t>();
  if (v < -(1LL << 31) || v >= (1LL << 31)) bad(fieldPath(where, key), "out of range");
  return static_cast<int>(v);
}

ip::Address parseAddr(const json& obj, const char* key, const std::string& where) {
  const auto text = reqString(obj, key, where, Code::DecodeFailure);
  auto a = ip::Address::parse(text);
  if (!a) bad(fieldPath(where, key), "\"" + text.substr(0, 64) + "\" is not an IP address");
  return *a;
}

ip::Prefix parsePrefix(const json& obj, const char* key, const std::string& where) {
  const auto text = reqString(obj, key, where, Code::DecodeFailure);
  auto p = ip::Prefix::parse(text);
  if (!p)
    bad(fieldPath(where, key), "\"" + text.substr(0, 64) + "\" is not an address in CIDR form");
  return *p;
}

template <typename F>
void forEach(const json& j, const char* key, F&& f) {
  const json* arr = optArray(j, key, "", Code::DecodeFailure);
  if (arr == nullptr) return;
  std::size_t i = 0;
  for (const auto& item : *arr) {
    if (!item.is_object())
      bad(std::string(key) + "[" + std::to_string(i) + "]", "expected an object");
    f(item, std::string(key) + "[" + std::to_string(i) + "]");
    ++i;
  }
}

}  // namespace

Result Result::fromJson(const json& j, std::string_view where) {
  if (!j.is_object())
    bad(std::string(where), "expected an object, got " + std::string(typeName(j)));
  Result r;
  try {
    forEach(j, "interfaces", [&](const json& o, const std::string& w) {
      Interface itf;
      itf.name = reqString(o, "name", w, Code::DecodeFailure);
      itf.mac = optString(o, "mac", w, Code::DecodeFailure).value_or("");
      itf.mtu = optSmallInt(o, "mtu", w);
      itf.sandbox = optString(o, "sandbox", w, Code::DecodeFailure).value_or("");
      r.interfaces.push_back(std::move(itf));
    });
    forEach(j, "ips", [&](const json& o, const std::string& w) {
      IpConfig c;
      c.address = parsePrefix(o, "address", w);
      if (member(o, "gateway", w) != nullptr) c.gateway = parseAddr(o, "gateway", w);
      if (c.gateway && c.gateway->family() != c.address.family()) {
        bad(w + ".gateway", "family differs from the address's");
      }
      c.interface = optSmallInt(o, "interface", w);
      if (c.interface &&
          (*c.interface < 0 || static_cast<std::size_t>(*c.interface) >= r.interfaces.size())) {
        bad(w + ".interface", "index " + std::to_string(*c.interface) + " names no interface");
      }
      if (auto v = optString(o, "version", w, Code::DecodeFailure)) {
        if (*v != ip::familyName(c.address.family())) {
          bad(w + ".version", "\"" + v->substr(0, 8) + "\" does not match the address family");
        }
      }
      r.ips.push_back(c);
    });
    forEach(j, "routes", [&](const json& o, const std::string& w) {
      Route rt;
      rt.dst = parsePrefix(o, "dst", w);
      if (member(o, "gw", w) != nullptr) rt.gw = parseAddr(o, "gw", w);
      rt.mtu = optSmallInt(o, "mtu", w);
      rt.advmss = optSmallInt(o, "advmss", w);
      rt.priority = optSmallInt(o, "priority", w);
      rt.table = optSmallInt(o, "table", w);
      rt.scope = optSmallInt(o, "scope", w);
      r.routes.push_back(rt);
    });
    if (const json* dns = optObject(j, "dns", "", Code::DecodeFailure)) r.dns = *dns;
  } catch (Error& e) {
    if (where != "result") throw e.context(where);
    throw;
  }
  return r;
}

json Result::toJson(std::string_view version) const {
  const bool v1 = versionAtLeast(version, "1.0.0");
  const bool v11 = versionAtLeast(version, "1.1.0");
  json j = json::object();
  j["cniVersion"] = version;
  if (!interfaces.empty()) {
    json arr = json::array();
    for (const auto& i : interfaces) {
      json o = {{"name", i.name}};
      if (!i.mac.empty()) o["mac"] = i.mac;
      if (v11 && i.mtu) o["mtu"] = *i.mtu;
      if (!i.sandbox.empty()) o["sandbox"] = i.sandbox;
      arr.push_back(std::move(o));
    }
    j["interfaces"] = std::move(arr);
  }
  if (!ips.empty()) {
    json arr = json::array();
    for (const auto& c : ips) {
      json o = json::object();
      if (!v1) o["version"] = ip::familyName(c.address.family());
      if (c.interface) o["interface"] = *c.interface;
      o["address"] = c.address.str();
      if (c.gateway) o["gateway"] = c.gateway->str();
      arr.push_back(std::move(o));
    }
    j["ips"] = std::move(arr);
  }
  if (!routes.empty()) {
    json arr = json::array();
    for (const auto& r : routes) {
      json o = {{"dst", r.dst.str()}};
      if (r.gw) o["gw"] = r.gw->str();
      if (v11) {
        if (r.mtu) o["mtu"] = *r.mtu;
        if (r.advmss) o["advmss"] = *r.advmss;
        if (r.priority) o["priority"] = *r.priority;
        if (r.table) o["table"] = *r.table;
        if (r.scope) o["scope"] = *r.scope;
      }
      arr.push_back(std::move(o));
    }
    j["routes"] = std::move(arr);
  }
  j["dns"] = dns;
  return j;
}

SerialisedResult Result::serialise(std::string_view version) const {
  SerialisedResult out;
  try {
    out.text = toJson(version).dump() + "\n";
  } catch (const json::type_error& e) {  // 316: a string that is not UTF-8
    throw Error(Code::Internal, std::string("cannot print the result: ") + e.what());
  }
  for (const auto& c : ips) out.summary += (out.summary.empty() ? "" : " ") + c.address.str();
  return out;
}

}  // namespace dualstack::cni

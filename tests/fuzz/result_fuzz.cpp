// CNI results (an IPAM plugin's output, prevResult): cni::Result::fromJson, then toJson for every
// supported version. Property: what toJson writes for a version, fromJson reads back into a
// result that toJson writes identically (conversion is stable), and version comparison never
// throws anything but a CNI error.
#include "dualstack/cni/json.hpp"
#include "dualstack/cni/result.hpp"
#include "dualstack/cni/version.hpp"
#include "fuzz.hpp"

using namespace dualstack;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::tolerateCniErrors([&] {
    const nlohmann::json j = cni::parseJson(fuzz::asText(data, size), "result");
    if (j.is_object() && j.contains("cniVersion") && j["cniVersion"].is_string()) {
      const auto& v = j["cniVersion"].get_ref<const std::string&>();
      fuzz::tolerateCniErrors([&] { (void)cni::compareVersions(v, "1.0.0"); });
      (void)cni::versionInfo(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    const cni::Result r = cni::Result::fromJson(j, "prevResult");
    for (const auto version : cni::kSupportedVersions) {
      const nlohmann::json out = r.toJson(version);
      const std::string text = out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      const cni::Result back = cni::Result::fromJson(out);
      if (back.toJson(version) != out) std::abort();
      (void)text;
    }
  });
  return 0;
}

// Kubeconfig files (YAML or JSON): k8s::parseKubeconfig. Bad input must end in a CNI error, and
// the description of the credentials (used in messages) must never contain the token itself.
#include <string>

#include "dualstack/cni/error.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "fuzz.hpp"

using namespace dualstack;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::asText(data, size);
  const std::string path = "/etc/cni/net.d/fuzz.kubeconfig";
  try {
    const k8s::Kubeconfig kc = k8s::parseKubeconfig(text, path);
    const std::string desc = kc.credentialDescription();
    // Long, distinctive tokens only: a short one may legitimately equal a user or file name.
    if (kc.token.size() >= 16 && desc.find(kc.token) != std::string::npos) std::abort();
  } catch (const cni::Error& e) {
    fuzz::checkError(e);
  }
  return 0;
}

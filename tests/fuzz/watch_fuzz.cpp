// What the API server sends the node informer: a watch stream fed to k8s::WatchDecoder in pieces
// whose sizes vary with the input, and the same bytes as one NodeList page.
#include <algorithm>
#include <cstdlib>

#include "dualstack/k8s/watch.hpp"
#include "fuzz.hpp"

using namespace dualstack;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::asText(data, size);
  fuzz::tolerateCniErrors([&] {
    constexpr std::size_t kMaxLine = 4096;
    k8s::WatchDecoder decoder(kMaxLine);
    std::size_t pos = 0;
    std::size_t step = 1;
    while (pos < text.size()) {
      const std::size_t n = std::min(step, text.size() - pos);
      decoder.feed(text.substr(pos, n), [](k8s::WatchEvent&& e) {
        const bool change = e.type == k8s::WatchEvent::Type::Added ||
                            e.type == k8s::WatchEvent::Type::Modified ||
                            e.type == k8s::WatchEvent::Type::Deleted;
        if (change && e.node.name.empty()) std::abort();
        if (e.type != k8s::WatchEvent::Type::Error && e.resourceVersion.empty()) std::abort();
        return true;
      });
      if (decoder.pending() > kMaxLine) std::abort();
      pos += n;
      step = step * 7 % 61 + 1;
    }
  });
  fuzz::tolerateCniErrors([&] {
    k8s::decodeNodeList(
        text,
        [](k8s::Node&& n, std::string&& rv) {
          if (n.name.empty() || rv.empty()) std::abort();
        },
        "fuzz list");
  });
  return 0;
}

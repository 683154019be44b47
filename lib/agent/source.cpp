#include "dualstack/agent/agent.hpp"

namespace dualstack::agent {

namespace {

class InformerSource : public NodeSource {
 public:
  InformerSource(std::function<k8s::Kubeconfig()> config, k8s::InformerOptions options)
      : informer_(std::move(config), std::move(options)) {}

  void run(std::stop_token stop, const Callbacks& callbacks) override {
    informer_.run(
        stop, [&](std::vector<k8s::Node> nodes) { callbacks.onList(std::move(nodes)); },
        [&](const k8s::NodeEvent& e) {
          if (e.type == k8s::NodeEvent::Type::Deleted) {
            callbacks.onDelete(e.node.name);
          } else {
            callbacks.onChange(e.node);
          }
        });
  }

  WatchCounters counters() const override {
    const k8s::InformerStats& s = informer_.stats();
    WatchCounters c;
    c.lists = s.lists.load();
    c.watches = s.watches.load();
    c.watchRestarts = s.watchRestarts.load();
    c.relists410 = s.relists410.load();
    c.events = s.events.load();
    c.errors = s.errors.load();
    c.lastSyncUnixMs = s.lastSyncUnixMs.load();
    return c;
  }

 private:
  k8s::NodeInformer informer_;
};

}  // namespace

std::unique_ptr<NodeSource> informerSource(std::function<k8s::Kubeconfig()> config,
                                           k8s::InformerOptions options) {
  return std::make_unique<InformerSource>(std::move(config), std::move(options));
}

}  // namespace dualstack::agent

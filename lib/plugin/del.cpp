// DEL, GC and STATUS: best effort teardown that never needs the pod's namespace.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <thread>

#include "common.hpp"
#include "dualstack/plugin/config.hpp"
#include "dualstack/plugin/hostveth.hpp"
#include "dualstack/plugin/masq.hpp"
#include "dualstack/plugin/plugin.hpp"

namespace dualstack::plugin {

namespace {

// Deletes a node-end veth on a thread of its own. The kernel unlists the pair and removes its
// addresses and routes under the RTNL lock, then, after releasing it, waits (an RCU barrier, ~20
// ms) before it acknowledges the request. Once the link is unlisted the pod's addresses are no
// longer configured anywhere, so the rest of DEL need not wait for that acknowledgement.
class VethDeletion {
 public:
  explicit VethDeletion(const netlink::LinkInfo& link) : link_(link) {
    thread_ = std::jthread([this] {
      try {
        netlink::Socket own("node netns");
        netlink::deleteLink(own, link_.index);
      } catch (...) {
        error_ = std::current_exception();
      }
      done_ = true;
    });
  }

  // Returns once `link` is no longer listed (or the deletion has ended, failed or not). A lookup
  // blocks while the deleting request holds the RTNL lock, so this rarely takes more than two.
  // When the lookup itself fails, waits for the kernel's answer instead.
  void waitUnlisted(netlink::Socket& host) {
    try {
      while (!done_) {
        const auto now = netlink::getLink(host, link_.index);
        if (!now || now->name != link_.name) return;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    } catch (const std::exception&) {
      thread_.join();
    }
  }

  // Waits for the kernel's answer; rethrows its error.
  void finish() {
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  netlink::LinkInfo link_;
  std::atomic<bool> done_{false};
  std::exception_ptr error_;
  std::jthread thread_;  // last: started once the members it uses exist, joined first
};

}  // namespace

void cmdDel(const cni::Env& env, const cni::NetConf& conf) {
  const PluginConfig pc = parsePluginConfig(conf);
  const cni::Attachment attachment{env.containerId, env.ifname};
  ErrorList errors;
  // Links first, addresses last, so an address is never handed out while still configured.
  // Deleting the node end takes the pod end and every route through either with it.
  std::string hostName = hostVethName(conf.name, attachment, 0);
  std::unique_ptr<VethDeletion> deletion;
  try {
    netlink::Socket host("node netns");
    if (auto link = findHostVeth(host, conf.name, attachment)) {
      hostName = link->name;
      deletion = std::make_unique<VethDeletion>(*link);
      deletion->waitUnlisted(host);
    }
  } catch (const std::exception& e) {
    errors.add("delete veth", e);
  }
  if (pc.ipMasq) {
    try {
      disableMasquerade(conf.name, hostName);
    } catch (const std::exception& e) {
      errors.add("remove masquerade", e);
    }
  }
  try {
    callIpam(pc.ipamType, cni::Command::Del, env, conf.raw.dump());
  } catch (const std::exception& e) {
    errors.add("release addresses", e);
  }
  try {
    if (deletion) deletion->finish();
  } catch (const std::exception& e) {
    errors.add("delete veth", e);
  }
  errors.throwIfAny("DEL of " + env.ifname + " in container " + env.containerId + " incomplete");
}

void cmdGc(const cni::Env& env, const cni::NetConf& conf) {
  const PluginConfig pc = parsePluginConfig(conf);
  ErrorList errors;
  try {
    callIpam(pc.ipamType, cni::Command::Gc, env, conf.raw.dump());
  } catch (const std::exception& e) {
    errors.add("IPAM GC", e);
  }
  auto valid = [&](const cni::Attachment& a) {
    return std::find(conf.validAttachments.begin(), conf.validAttachments.end(), a) !=
           conf.validAttachments.end();
  };
  std::vector<std::string> live;
  try {
    netlink::Socket host("node netns");
    for (const auto& link : netlink::listLinks(host, "veth")) {
      auto owner = parseHostVethAlias(conf.name, link.alias);
      if (!owner) continue;
      if (valid(*owner)) {
        live.push_back(link.name);
        continue;
      }
      try {
        netlink::deleteLink(host, link.index);
      } catch (const std::exception& e) {
        errors.add("delete stale veth " + link.name, e);
      }
    }
  } catch (const std::exception& e) {
    errors.add("list veths", e);
  }
  if (pc.ipMasq) {
    try {
      for (const auto& name : masqueradedInterfaces(conf.name)) {
        if (std::find(live.begin(), live.end(), name) == live.end()) {
          disableMasquerade(conf.name, name);
        }
      }
    } catch (const std::exception& e) {
      errors.add("remove stale masquerade entries", e);
    }
  }
  errors.throwIfAny("GC of network " + conf.name + " incomplete");
}

void cmdStatus(const cni::Env& env, const cni::NetConf& conf) {
  const PluginConfig pc = parsePluginConfig(conf);
  callIpam(pc.ipamType, cni::Command::Status, env, conf.raw.dump());
}

cni::Handlers handlers() {
  cni::Handlers h;
  h.add = cmdAdd;
  h.del = cmdDel;
  h.check = cmdCheck;
  h.gc = cmdGc;
  h.status = cmdStatus;
  return h;
}

}  // namespace dualstack::plugin

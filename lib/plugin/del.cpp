// DEL, GC and STATUS: best effort teardown that never needs the pod's namespace.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <thread>

#include "common.hpp"
#include "dualstack/cni/error.hpp"
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
  const PluginConfig pc = parsePluginConfig(env, conf);
  const cni::Attachment attachment{env.containerId, env.ifname};
  cni::ErrorList errors;
  // Links first, addresses last, so an address is never handed out while still configured.
  // Deleting the node end takes the pod end and every route through either with it.
  std::optional<std::string> hostName;
  std::vector<std::string> freeNames;
  std::unique_ptr<VethDeletion> deletion;
  try {
    netlink::Socket host("node netns");
    if (auto link = findHostVeth(host, conf.name, pc.store, attachment)) {
      hostName = link->name;
      deletion = std::make_unique<VethDeletion>(*link);
      deletion->waitUnlisted(host);
    } else if (pc.ipMasq) {
      freeNames = freeHostVethNames(host, conf.name, attachment);
    }
  } catch (const std::exception& e) {
    errors.add("delete veth", e);
  }
  if (pc.ipMasq) {
    try {
      if (hostName) {
        disableMasquerade(conf.name, *hostName);
      } else {
        // The veth is gone (an earlier DEL removed it but not its masquerade entry). Only names
        // no link has are ours to clean: a name in use belongs to another attachment or store.
        for (const auto& name : masqueradedInterfaces(conf.name)) {
          if (std::find(freeNames.begin(), freeNames.end(), name) != freeNames.end()) {
            disableMasquerade(conf.name, name);
          }
        }
      }
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

namespace {

// Codes with which a plugin refuses a request before acting on it. A plugin that does not know
// GC answers one of them too: the reference host-local of containernetworking/plugins 1.1 says
// "missing containerID" (3), as for any verb it takes for an attachment's.
bool refused(cni::Code code) {
  switch (code) {
    case cni::Code::IncompatibleVersion:
    case cni::Code::UnsupportedField:
    case cni::Code::UnknownContainer:
    case cni::Code::InvalidEnv:
    case cni::Code::DecodeFailure:
    case cni::Code::InvalidConfig:
      return true;
    default:
      return false;
  }
}

}  // namespace

void cmdGc(const cni::Env& env, const cni::NetConf& conf) {
  const PluginConfig pc = parsePluginConfig(env, conf);
  cni::ErrorList errors;
  try {
    callIpam(pc.ipamType, cni::Command::Gc, env, conf.raw.dump());
  } catch (const cni::Error& e) {
    // An IPAM that refuses the GC (or cannot do one) keeps every address: removing veths now
    // would leave attachments without a link but with their addresses held.
    if (refused(e.code())) {
      throw cni::Error(e).context("GC of network " + conf.name +
                                  " not done, nothing removed: the IPAM plugin refused it");
    }
    errors.add("IPAM GC", e);
  } catch (const std::exception& e) {
    errors.add("IPAM GC", e);
  }
  auto valid = [&](const cni::Attachment& a) {
    return std::find(conf.validAttachments.begin(), conf.validAttachments.end(), a) !=
           conf.validAttachments.end();
  };
  try {
    netlink::Socket host("node netns");
    for (const auto& link : netlink::listLinks(host, "veth")) {
      // Links of other networks, of this network's other stores, and foreign links are skipped.
      auto owner = parseHostVethAlias(conf.name, pc.store, link.alias);
      if (!owner || valid(*owner)) continue;
      try {
        netlink::deleteLink(host, link.index);
      } catch (const std::exception& e) {
        errors.add("delete stale veth " + link.name, e);
      }
    }
    if (pc.ipMasq) {
      try {
        // Entries of interfaces that no longer exist: those just removed and those whose DEL
        // did not get to it.
        for (const auto& name : masqueradedInterfaces(conf.name)) {
          if (!netlink::getLink(host, name)) disableMasquerade(conf.name, name);
        }
      } catch (const std::exception& e) {
        errors.add("remove stale masquerade entries", e);
      }
    }
  } catch (const std::exception& e) {
    errors.add("list veths", e);
  }
  errors.throwIfAny("GC of network " + conf.name + " incomplete");
}

void cmdStatus(const cni::Env& env, const cni::NetConf& conf) {
  const PluginConfig pc = parsePluginConfig(env, conf);
  callIpam(pc.ipamType, cni::Command::Status, env, conf.raw.dump());
}

cni::Handlers handlers() {
  return {.add = cmdAdd, .del = cmdDel, .check = cmdCheck, .gc = cmdGc, .status = cmdStatus};
}

}  // namespace dualstack::plugin

#include "dualstack/ipam/commands.hpp"

#include <algorithm>
#include <chrono>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/result.hpp"
#include "dualstack/ipam/allocator.hpp"
#include "dualstack/ipam/config.hpp"
#include "dualstack/ipam/disk_store.hpp"

namespace dualstack::ipam {

using cni::Code;
using cni::Error;

namespace {

cni::Attachment attachmentOf(const cni::Env& env) { return {env.containerId, env.ifname}; }

}  // namespace

cni::SerialisedResult cmdAdd(const cni::Env& env, const cni::NetConf& conf) {
  const IpamConfig cfg = parseIpamConfig(conf, env, Scope::Allocate);
  const std::vector<RangeSet> sets = rangeSets(cfg);
  const auto requested = assignRequested(sets, cfg.requested);
  const cni::Attachment a = attachmentOf(env);

  auto store = DiskStore::open(cfg.dataDir, cfg.network, DiskStore::Mode::Create);
  store->prepare(a);
  store->lock();
  const auto allocations = allocate(sets, a, requested, *store);

  // The result is made before the commit, so that once the store is committed nothing can fail.
  // Should anything fail from here on, the addresses stay with the attachment: a runtime follows
  // a failed ADD with DEL.
  cni::Result result;
  for (const auto& al : allocations) {
    const RangeSet& set = sets[al.set];
    const Range* r = set.rangeFor(al.address);
    if (r == nullptr) r = set.subnetFor(al.address);
    result.ips.push_back({ip::Prefix(al.address, r->subnet.length()), r->gateway, std::nullopt});
  }
  result.routes = cfg.routes;
  cni::SerialisedResult out = result.serialise(conf.cniVersion);
  store->commit();
  return out;
}

std::vector<ip::Address> releaseAttachment(const std::string& dataDir, const std::string& network,
                                           const cni::Attachment& a) {
  auto store = DiskStore::open(dataDir, network, DiskStore::Mode::Existing);
  if (!store) return {};
  store->lock();
  std::vector<ip::Address> released;
  std::string failure;
  try {
    released = release(a, *store);
  } catch (const Error& e) {
    failure = e.msg();
  }
  store->commit();
  if (!failure.empty()) throw Error(Code::IoFailure, failure);
  return released;
}

void cmdDel(const cni::Env& env, const cni::NetConf& conf) {
  const IpamConfig cfg = parseIpamConfig(conf, env, Scope::Store);
  releaseAttachment(cfg.dataDir, cfg.network, attachmentOf(env));
}

void cmdCheck(const cni::Env& env, const cni::NetConf& conf) {
  const IpamConfig cfg = parseIpamConfig(conf, env, Scope::Check);
  const std::vector<RangeSet> sets = rangeSets(cfg);
  const cni::Attachment a = attachmentOf(env);
  const std::string who = a.containerId + "/" + a.ifname;

  auto store = DiskStore::open(cfg.dataDir, cfg.network, DiskStore::Mode::Existing);
  if (!store) {
    throw Error(Code::CheckFailed, who + " holds no address: the store " + cfg.dataDir + "/" +
                                       cfg.network + " does not exist");
  }
  store->lock();
  const auto held = store->addressesOf(a);
  store->commit();

  for (const auto& set : sets) {
    const bool has = std::any_of(held.begin(), held.end(),
                                 [&](const ip::Address& h) { return set.subnetFor(h) != nullptr; });
    if (!has) {
      throw Error(Code::CheckFailed, who + " holds no " + std::string(familyLabel(set.family())) +
                                         " address in " + set.str());
    }
  }
  if (!conf.prevResult().is_null()) {
    const auto prev = cni::Result::fromJson(conf.prevResult(), "prevResult");
    for (const auto& c : prev.ips) {
      const ip::Address addr = c.address.address();
      const bool ours = std::any_of(sets.begin(), sets.end(), [&](const RangeSet& s) {
        return s.subnetFor(addr) != nullptr;
      });
      if (ours && std::find(held.begin(), held.end(), addr) == held.end()) {
        throw Error(Code::CheckFailed, "prevResult lists " + addr.str() + " but the store does " +
                                           "not hold it for " + who);
      }
    }
  }
}

void cmdGc(const cni::Env& env, const cni::NetConf& conf) {
  const IpamConfig cfg = parseIpamConfig(conf, env, Scope::Store);
  auto store = DiskStore::open(cfg.dataDir, cfg.network, DiskStore::Mode::Existing);
  if (!store) return;
  store->lock();
  const GcResult r = collectGarbage(conf.validAttachments, *store);
  cni::ErrorList errors = r.errors;
  try {
    store->removeStaleTemps(std::chrono::minutes(10));
  } catch (const Error& e) {
    errors.add(e);
  }
  try {
    store->commit();
  } catch (const Error& e) {
    errors.add(e);
  }
  errors.throwIfAny("GC of " + store->path() + " released " + std::to_string(r.released.size()) +
                    " addresses but failed");
}

void cmdStatus(const cni::Env& env, const cni::NetConf& conf) {
  const IpamConfig cfg = parseIpamConfig(conf, env, Scope::Allocate);
  std::vector<RangeSet> sets = cfg.ranges;
  if (cfg.node) {
    k8s::Node node;
    try {
      node = cfg.node->load();
    } catch (const Error& e) {
      throw Error(Code::NotAvailable, "no pod CIDR known: " + e.msg());
    }
    sets = rangeSetsForNode(node, cfg.node->fieldPrefix());
  }
  auto store = DiskStore::open(cfg.dataDir, cfg.network, DiskStore::Mode::ReadOnly);
  if (!store) return;
  store->lock();
  if (const RangeSet* full = firstExhausted(sets, *store)) {
    throw Error(Code::NotAvailable, exhaustedMessage(*full));
  }
}

cni::Handlers handlers() {
  return {.add = cmdAdd, .del = cmdDel, .check = cmdCheck, .gc = cmdGc, .status = cmdStatus};
}

}  // namespace dualstack::ipam

#include "dualstack/plugin/masq.hpp"

#include <algorithm>
#include <cerrno>
#include <optional>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"
#include "dualstack/nft/nftables.hpp"
#include "dualstack/nft/table.hpp"

namespace dualstack::plugin {

using nlohmann::json;

namespace {

// The name ends up quoted in an nftables command, so beyond the kernel's own rules (1-15 bytes, no
// '/', ':' or whitespace) quotes and backslashes are refused too.
void checkIfname(std::string_view ifname) {
  const bool ok = !ifname.empty() && ifname.size() <= 15 &&
                  std::all_of(ifname.begin(), ifname.end(), [](char c) {
                    const auto u = static_cast<unsigned char>(c);
                    return u > ' ' && u < 0x7f && c != '"' && c != '\\' && c != '/' && c != ':';
                  });
  if (!ok) {
    throw cni::Error(cni::Code::Internal,
                     "ipMasq: host interface name \"" + std::string(ifname) + "\" is not valid");
  }
}

void checkNetwork(std::string_view network) { nft::checkNetwork(network, "ipMasq"); }

// v2 rules also skip the cluster sets the node agent fills; a v1 table is rewritten at the next
// ADD (recognized by the comments).
constexpr const char* kRule4 = "dualstack-cni ipMasq v2 IPv4";
constexpr const char* kRule6 = "dualstack-cni ipMasq v2 IPv6";

// What enable needs to know of a network's table.
struct TableState {
  bool chain = false;
  std::vector<std::string> ruleComments;  // rules of the postrouting chain, in order
  // nullopt: the set is missing; an element nft shows as a range becomes an invalid prefix.
  std::optional<std::vector<ip::Prefix>> except4, except6;
};

// libnftables 1.0.6 fetches only the named object for "list set" and "list chain", but every
// chain and set of every table for "list table" or any "add element" (8-15 ms per command beside
// 2000 unrelated chains here), so state is read object by object, one command per run: several
// list commands in one buffer share one cache filter and fail with ENOENT. The cluster sets are
// not read: they may hold thousands of elements, and enable only declares them.
TableState readTable(nft::Context& nft, std::string_view network) {
  const std::string t = nft::qualifiedTable(network);
  TableState state;
  if (const auto items = nft::listJson(nft, "list chain " + t + " postrouting")) {
    state.chain = true;
    for (const auto& item : *items) {
      if (item.is_object() && item.contains("rule")) {
        state.ruleComments.push_back(item["rule"].value("comment", ""));
      }
    }
  }
  for (const auto* name : {"except4", "except6"}) {
    const auto items = nft::listJson(nft, "list set " + t + " " + name);
    if (!items) continue;
    const json* set = nft::findSet(*items);
    (std::string_view(name) == "except4" ? state.except4 : state.except6) =
        set != nullptr ? nft::setPrefixes(*set) : std::vector<ip::Prefix>{};
  }
  return state;
}

// The pods set, or nullopt when the network has no table.
std::optional<std::vector<std::string>> listPods(nft::Context& nft, std::string_view network) {
  const auto items = nft::listJson(nft, "list set " + nft::qualifiedTable(network) + " pods");
  if (!items) return std::nullopt;
  const json* set = nft::findSet(*items);
  return set != nullptr ? nft::setNames(*set) : std::vector<std::string>{};
}

}  // namespace

std::string masqueradeTableName(std::string_view network) { return nft::tableName(network); }

std::string masqueradeLockPath(std::string_view network) { return nft::lockPath(network); }

void enableMasquerade(std::string_view network, std::string_view hostIfname,
                      const std::vector<ip::Prefix>& exclude) {
  checkNetwork(network);
  checkIfname(hostIfname);
  std::vector<ip::Prefix> v4{*ip::Prefix::parse("224.0.0.0/4")};
  std::vector<ip::Prefix> v6{*ip::Prefix::parse("ff00::/8")};
  for (const auto& p : exclude) (p.family() == ip::Family::V4 ? v4 : v6).push_back(p);
  v4 = nft::normalized(std::move(v4));
  v6 = nft::normalized(std::move(v6));
  const std::string t = nft::qualifiedTable(network);
  const std::string ifname(hostIfname);

  nft::TableLock lock(network);
  nft::Context nft;
  // Only what differs is written; in the common case (table there, exclusions unchanged) that is
  // the pod's element alone. A transaction that deletes anything (flush chain, flush set) queues
  // kernel work that waits for an RCU grace period, and closing the netlink socket waits for that
  // work (nft_rcv_nl_event on NETLINK_URELEASE): 6-16 ms here, against ~1 ms for additions only.
  const TableState state = readTable(nft, network);
  // "add" of an existing table, set or element changes nothing.
  std::string cmds = "add table " + t + "\n";
  if (!state.chain) {
    cmds += "add chain " + t +
            " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n";
  }
  // Not "add element", which makes libnftables 1.0.6 dump the whole ruleset's chains and sets
  // first (see readTable); a set declaration with elements needs only the table list and reaches
  // the kernel as the same NEWSETELEM.
  cmds += "add set " + t + " pods { type ifname; elements = { \"" + ifname + "\" }; }\n";
  if (!state.except4) cmds += "add set " + t + " except4 { type ipv4_addr; flags interval; }\n";
  if (!state.except6) cmds += "add set " + t + " except6 { type ipv6_addr; flags interval; }\n";
  // Declared, never filled here: the node agent owns their elements.
  cmds += nft::declareClusterSets(network);
  // "add rule" appends even an identical rule, so the rules are recognized by their comments and
  // rewritten as a whole when they are not exactly ours.
  if (state.ruleComments != std::vector<std::string>{kRule4, kRule6}) {
    if (!state.ruleComments.empty()) cmds += "flush chain " + t + " postrouting\n";
    // In postrouting the kernel passes the input device of forwarded packets (ip_output and
    // ip6_output hand skb->dev to the hook), so iifname matches the pod's host veth here.
    cmds += "add rule " + t + " postrouting iifname @pods ip daddr != @except4 ip daddr != @" +
            nft::kCluster4 + " masquerade comment \"" + kRule4 + "\"\n";
    cmds += "add rule " + t + " postrouting iifname @pods ip6 daddr != @except6 ip6 daddr != @" +
            nft::kCluster6 + " masquerade comment \"" + kRule6 + "\"\n";
  }
  // The config's current exclusions win; flush and add in one transaction leave no gap.
  const auto sync = [&](const char* set, const std::optional<std::vector<ip::Prefix>>& have,
                        const std::vector<ip::Prefix>& want) {
    if (have && *have == want) return;
    if (have && !have->empty()) cmds += "flush set " + t + " " + set + "\n";
    cmds += "add element " + t + " " + set + " { " + nft::elementList(want) + " }\n";
  };
  sync("except4", state.except4, v4);
  sync("except6", state.except6, v6);
  if (!nft.run(cmds)) {
    throw nft::error("enable masquerade for " + ifname + " in table " + t, nft.error());
  }
}

void disableMasquerade(std::string_view network, std::string_view hostIfname) {
  checkNetwork(network);
  checkIfname(hostIfname);
  const std::string t = nft::qualifiedTable(network);
  const std::string ifname(hostIfname);

  nft::TableLock lock(network);
  nft::Context nft;
  const auto pods = listPods(nft, network);
  if (!pods) return;
  const bool member = std::binary_search(pods->begin(), pods->end(), ifname);
  if (!member && !pods->empty()) return;
  bool dropTable = pods->size() <= 1;
  if (dropTable) {
    // The last pod: the table goes, unless the node agent keeps cluster podCIDRs in it (the next
    // pod then finds them in place rather than waiting for the agent to put them back).
    const nft::ClusterSets cluster = nft::readClusterSets(nft, network);
    const auto filled = [](const auto& set) { return set && !set->empty(); };
    dropTable = !filled(cluster.v4) && !filled(cluster.v6);
  }
  const std::string cmd =
      dropTable ? "delete table " + t : "delete element " + t + " pods { \"" + ifname + "\" }";
  // ENOENT: someone else (nft flush ruleset, a firewall reload) removed it first.
  if (!nft.run(cmd) && !nft::reports(nft.error(), ENOENT)) {
    throw nft::error("disable masquerade for " + ifname + " in table " + t, nft.error());
  }
}

std::vector<std::string> masqueradedInterfaces(std::string_view network) {
  checkNetwork(network);
  nft::Context nft;
  return listPods(nft, network).value_or(std::vector<std::string>{});
}

}  // namespace dualstack::plugin

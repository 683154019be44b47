#include "dualstack/plugin/masq.hpp"

#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"

#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/file.hpp"
#include "dualstack/sys/lock.hpp"
#include "nftables_lib.hpp"

namespace dualstack::plugin {

using cni::Code;
using cni::Error;

namespace {

constexpr const char* kLockDir = "/run/dualstack-cni";
// nftables names may be 255 bytes; lock file names 255. Longer network names are shortened with
// a hash of the whole name.
constexpr std::size_t kMaxVerbatimName = 200;

bool isAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void checkNetwork(std::string_view network) {
  const bool ok = !network.empty() && isAsciiAlnum(network.front()) &&
                  std::all_of(network.begin(), network.end(), [](char c) {
                    return isAsciiAlnum(c) || c == '_' || c == '.' || c == '-';
                  });
  if (!ok) {
    throw Error(Code::InvalidConfig, "ipMasq: network name \"" + std::string(network) +
                                         "\" is not valid (expected [a-zA-Z0-9][a-zA-Z0-9_.-]*)");
  }
}

// The name ends up quoted in an nftables command, so beyond the kernel's own rules (1-15 bytes, no
// '/', ':' or whitespace) quotes and backslashes are refused too.
void checkIfname(std::string_view ifname) {
  const bool ok = !ifname.empty() && ifname.size() <= 15 &&
                  std::all_of(ifname.begin(), ifname.end(), [](char c) {
                    const auto u = static_cast<unsigned char>(c);
                    return u > ' ' && u < 0x7f && c != '"' && c != '\\' && c != '/' && c != ':';
                  });
  if (!ok) {
    throw Error(Code::Internal,
                "ipMasq: host interface name \"" + std::string(ifname) + "\" is not valid");
  }
}

std::string shortName(std::string_view network) {
  if (network.size() <= kMaxVerbatimName) return std::string(network);
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a 64
  for (const char c : network) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  std::string hex(16, '0');
  for (std::size_t i = 0; i < 16; ++i) {
    hex[15 - i] = "0123456789abcdef"[h & 0xf];
    h >>= 4;
  }
  return std::string(network.substr(0, kMaxVerbatimName - 17)) + "_" + hex;
}

class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    if (::mkdir(kLockDir, 0700) != 0 && errno != EEXIST) {
      throw cni::errnoError(Code::IoFailure, std::string("create ") + kLockDir, errno);
    }
    if (const sys::FileProblem p =
            sys::openRegularAt(AT_FDCWD, path, O_RDWR | O_CREAT, 0600, sys::Links::Refuse, fd_)) {
      throw Error(Code::IoFailure, "open lock file " + path + ": " + p.describe());
    }
    if (const int err = sys::lockExclusive(fd_.get(), sys::kLockWait); err != 0) {
      if (err != ETIMEDOUT) throw cni::errnoError(Code::IoFailure, "lock " + path, err);
      const std::string holder = sys::lockHolder(fd_.get());
      throw Error(Code::TryAgainLater,
                  "ipMasq: the lock " + path + " is held by " +
                      (holder.empty() ? "another process" : holder) +
                      " and was not released within " + std::to_string(sys::kLockWait.count()) +
                      " s; try again later (a process that stays stuck holding it must be ended)");
    }
  }

 private:
  sys::Fd fd_;
};

std::string qualifiedTable(std::string_view network) {
  return "inet " + masqueradeTableName(network);
}

bool contains(const std::string& haystack, int err) {
  return haystack.find(std::strerror(err)) != std::string::npos;
}

// nft reports "Error: <reason>\n<command>\n<carets>\n" per failed command; the first line goes in
// the message, all of it in the details.
Error nftError(const std::string& what, const std::string& nftText) {
  std::string reason = nftText.substr(0, nftText.find('\n'));
  if (reason.rfind("Error: ", 0) == 0) reason.erase(0, 7);
  if (reason.empty()) reason = "failed without a message";
  std::string hint;
  if (contains(nftText, EPERM)) {
    hint = " (needs CAP_NET_ADMIN in the node's network namespace)";
  } else if (contains(nftText, ENOENT) || contains(nftText, EOPNOTSUPP) ||
             contains(nftText, EPROTONOSUPPORT) || contains(nftText, EAFNOSUPPORT)) {
    // A missing expression or chain type (nft_masq, nft_chain_nat, nf_nat) also shows as ENOENT.
    hint = " (is the nf_tables kernel module available, with nft_chain_nat and nft_masq?)";
  }
  return Error(Code::IoFailure, what + ": nftables: " + reason + hint, nftText);
}

class Nft {
 public:
  Nft() : lib_(NftablesLib::get()), ctx_(nullptr, Free{lib_.ctxFree}) {
    // libnftables opens its netlink socket in nft_ctx_new() and calls exit() when that fails,
    // which would end the plugin without a CNI error; try the same socket first.
    const int probe = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (probe < 0) {
      throw Error(Code::IoFailure, std::string("open netfilter netlink socket: ") +
                                       std::strerror(errno) +
                                       " (is the nf_tables kernel module available?)");
    }
    ::close(probe);
    ctx_.reset(lib_.ctxNew(NFT_CTX_DEFAULT));
    // Both buffered: stdout belongs to the CNI result.
    if (!ctx_ || lib_.ctxBufferOutput(ctx_.get()) != 0 || lib_.ctxBufferError(ctx_.get()) != 0) {
      throw Error(Code::Internal, "cannot set up a libnftables context");
    }
  }

  bool run(const std::string& commands, bool jsonOutput = false) {
    lib_.ctxOutputSetFlags(ctx_.get(), jsonOutput ? NFT_CTX_OUTPUT_JSON : 0);
    const int rc = lib_.runCmdFromBuffer(ctx_.get(), commands.c_str());
    const char* out = lib_.ctxGetOutputBuffer(ctx_.get());
    const char* err = lib_.ctxGetErrorBuffer(ctx_.get());
    out_ = out != nullptr ? out : "";
    err_ = err != nullptr ? err : "";
    return rc == 0;
  }
  const std::string& output() const { return out_; }
  const std::string& error() const { return err_; }

 private:
  struct Free {
    decltype(NftablesLib::ctxFree) fn;
    void operator()(nft_ctx* c) const { fn(c); }
  };
  const NftablesLib& lib_;
  std::unique_ptr<nft_ctx, Free> ctx_;
  std::string out_;
  std::string err_;
};

using nlohmann::json;

bool prefixLess(const ip::Prefix& a, const ip::Prefix& b) {
  if (a.first() != b.first()) return a.first() < b.first();
  return a.length() < b.length();
}

// Interval sets refuse overlapping elements ("conflicting intervals specified"). CIDR prefixes
// either nest or are disjoint, so dropping every prefix inside another one is enough.
std::vector<ip::Prefix> normalized(std::vector<ip::Prefix> prefixes) {
  for (auto& p : prefixes) p = p.network();
  std::sort(prefixes.begin(), prefixes.end(), prefixLess);
  std::vector<ip::Prefix> out;
  for (const auto& p : prefixes) {
    if (!out.empty() && out.back().contains(p.first())) continue;
    out.push_back(p);
  }
  return out;
}

std::string elementList(const std::vector<ip::Prefix>& prefixes) {
  std::string out;
  for (const auto& p : prefixes) out += (out.empty() ? "" : ", ") + p.str();
  return out;
}

constexpr const char* kRule4 = "dualstack-cni ipMasq v1 IPv4";
constexpr const char* kRule6 = "dualstack-cni ipMasq v1 IPv6";

// What enable needs to know of a network's table.
struct TableState {
  bool chain = false;
  std::vector<std::string> ruleComments;  // rules of the postrouting chain, in order
  // nullopt: the set is missing; an element nft shows as a range becomes an invalid prefix.
  std::optional<std::vector<ip::Prefix>> except4, except6;
};

const json& nftablesArray(const json& doc, const std::string& what, const std::string& text) {
  if (!doc.is_object() || !doc.contains("nftables") || !doc["nftables"].is_array()) {
    throw Error(Code::Internal, what + ": unexpected nftables JSON output", text);
  }
  return doc["nftables"];
}

// Runs a `list` command with JSON output; nullopt when the table does not exist.
std::optional<json> listJson(Nft& nft, const std::string& command) {
  if (!nft.run(command, true)) {
    if (contains(nft.error(), ENOENT)) return std::nullopt;
    throw nftError(command, nft.error());
  }
  return cni::parseJson(nft.output(), "the output of nft " + command);
}

std::vector<std::string> setNames(const json& set) {
  std::vector<std::string> names;
  if (!set.contains("elem") || !set["elem"].is_array()) return names;
  for (const auto& e : set["elem"]) {
    if (e.is_string()) {
      names.push_back(e.get<std::string>());
    } else if (e.is_object() && e.contains("elem") && e["elem"].is_object() &&
               e["elem"].contains("val") && e["elem"]["val"].is_string()) {
      // An element with attributes (timeout, comment) that someone else added.
      names.push_back(e["elem"]["val"].get<std::string>());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<ip::Prefix> setPrefixes(const json& set) {
  std::vector<ip::Prefix> out;
  if (!set.contains("elem") || !set["elem"].is_array()) return out;
  for (const auto& e : set["elem"]) {
    std::optional<ip::Prefix> p;
    if (e.is_string()) {
      p = ip::Prefix::parse(e.get<std::string>(), true);
    } else if (e.is_object() && e.contains("prefix") && e["prefix"].is_object()) {
      const auto& addr = e["prefix"].value("addr", json());
      const auto& len = e["prefix"].value("len", json());
      if (addr.is_string() && len.is_number_integer()) {
        p = ip::Prefix::parse(addr.get<std::string>() + "/" +
                              std::to_string(len.get<std::int64_t>()));
      }
    }
    // Anything else (a range) cannot equal a wanted prefix list: an impossible /0 marks it.
    out.push_back(p.value_or(ip::Prefix(ip::Address::v4(1), 0)));
  }
  std::sort(out.begin(), out.end(), prefixLess);
  return out;
}

// libnftables 1.0.6 fetches only the named object for "list set" and "list chain", but every
// chain and set of every table for "list table" or any "add element" (8-15 ms per command beside
// 2000 unrelated chains here), so state is read object by object, one command per run: several
// list commands in one buffer share one cache filter and fail with ENOENT.
TableState readTable(Nft& nft, std::string_view network) {
  const std::string t = qualifiedTable(network);
  TableState state;
  const std::string chainCmd = "list chain " + t + " postrouting";
  if (const auto doc = listJson(nft, chainCmd)) {
    state.chain = true;
    for (const auto& item : nftablesArray(*doc, chainCmd, nft.output())) {
      if (item.is_object() && item.contains("rule")) {
        state.ruleComments.push_back(item["rule"].value("comment", ""));
      }
    }
  }
  for (const auto* name : {"except4", "except6"}) {
    const std::string setCmd = "list set " + t + " " + name;
    const auto doc = listJson(nft, setCmd);
    if (!doc) continue;
    std::vector<ip::Prefix> elems;
    for (const auto& item : nftablesArray(*doc, setCmd, nft.output())) {
      if (item.is_object() && item.contains("set")) elems = setPrefixes(item["set"]);
    }
    (std::string_view(name) == "except4" ? state.except4 : state.except6) = std::move(elems);
  }
  return state;
}

// The pods set, or nullopt when the network has no table.
std::optional<std::vector<std::string>> listPods(Nft& nft, std::string_view network) {
  const std::string command = "list set " + qualifiedTable(network) + " pods";
  const auto doc = listJson(nft, command);
  if (!doc) return std::nullopt;
  for (const auto& item : nftablesArray(*doc, command, nft.output())) {
    if (item.is_object() && item.contains("set")) return setNames(item["set"]);
  }
  return std::vector<std::string>{};
}

}  // namespace

std::string masqueradeTableName(std::string_view network) {
  return "dualstack_" + shortName(network);
}

std::string masqueradeLockPath(std::string_view network) {
  return std::string(kLockDir) + "/masq-" + shortName(network) + ".lock";
}

void enableMasquerade(std::string_view network, std::string_view hostIfname,
                      const std::vector<ip::Prefix>& exclude) {
  checkNetwork(network);
  checkIfname(hostIfname);
  std::vector<ip::Prefix> v4{*ip::Prefix::parse("224.0.0.0/4")};
  std::vector<ip::Prefix> v6{*ip::Prefix::parse("ff00::/8")};
  for (const auto& p : exclude) (p.family() == ip::Family::V4 ? v4 : v6).push_back(p);
  v4 = normalized(std::move(v4));
  v6 = normalized(std::move(v6));
  const std::string t = qualifiedTable(network);
  const std::string ifname(hostIfname);

  FileLock lock(masqueradeLockPath(network));
  Nft nft;
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
  // "add rule" appends even an identical rule, so the rules are recognized by their comments and
  // rewritten as a whole when they are not exactly ours.
  if (state.ruleComments != std::vector<std::string>{kRule4, kRule6}) {
    if (!state.ruleComments.empty()) cmds += "flush chain " + t + " postrouting\n";
    // In postrouting the kernel passes the input device of forwarded packets (ip_output and
    // ip6_output hand skb->dev to the hook), so iifname matches the pod's host veth here.
    cmds += "add rule " + t + " postrouting iifname @pods ip daddr != @except4 masquerade" +
            " comment \"" + kRule4 + "\"\n";
    cmds += "add rule " + t + " postrouting iifname @pods ip6 daddr != @except6 masquerade" +
            " comment \"" + kRule6 + "\"\n";
  }
  // The config's current exclusions win; flush and add in one transaction leave no gap.
  const auto sync = [&](const char* set, const std::optional<std::vector<ip::Prefix>>& have,
                        const std::vector<ip::Prefix>& want) {
    if (have && *have == want) return;
    if (have && !have->empty()) cmds += "flush set " + t + " " + set + "\n";
    cmds += "add element " + t + " " + set + " { " + elementList(want) + " }\n";
  };
  sync("except4", state.except4, v4);
  sync("except6", state.except6, v6);
  if (!nft.run(cmds)) {
    throw nftError("enable masquerade for " + ifname + " in table " + t, nft.error());
  }
}

void disableMasquerade(std::string_view network, std::string_view hostIfname) {
  checkNetwork(network);
  checkIfname(hostIfname);
  const std::string t = qualifiedTable(network);
  const std::string ifname(hostIfname);

  FileLock lock(masqueradeLockPath(network));
  Nft nft;
  const auto pods = listPods(nft, network);
  if (!pods) return;
  const bool member = std::binary_search(pods->begin(), pods->end(), ifname);
  if (!member && !pods->empty()) return;
  const bool last = pods->size() <= 1;
  const std::string cmd =
      last ? "delete table " + t : "delete element " + t + " pods { \"" + ifname + "\" }";
  // ENOENT: someone else (nft flush ruleset, a firewall reload) removed it first.
  if (!nft.run(cmd) && !contains(nft.error(), ENOENT)) {
    throw nftError("disable masquerade for " + ifname + " in table " + t, nft.error());
  }
}

std::vector<std::string> masqueradedInterfaces(std::string_view network) {
  checkNetwork(network);
  Nft nft;
  return listPods(nft, network).value_or(std::vector<std::string>{});
}

}  // namespace dualstack::plugin

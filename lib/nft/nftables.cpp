#include "dualstack/nft/nftables.hpp"

#include <linux/netlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/json.hpp"
#include "library.hpp"

namespace dualstack::nft {

using nlohmann::json;
using sys::Code;
using sys::Error;

struct Context::Impl {
  struct Free {
    decltype(NftablesLib::ctxFree) fn;
    void operator()(nft_ctx* c) const { fn(c); }
  };
  explicit Impl(const NftablesLib& l) : lib(l), ctx(nullptr, Free{l.ctxFree}) {}
  const NftablesLib& lib;
  std::unique_ptr<nft_ctx, Free> ctx;
};

Context::Context() {
  const NftablesLib& lib = NftablesLib::get();
  // libnftables opens its netlink socket in nft_ctx_new() and calls exit() when that fails,
  // which would end the process without an error of ours; try the same socket first.
  const sys::Fd probe(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!probe) {
    throw Error(Code::IoFailure, std::string("open netfilter netlink socket: ") +
                                     std::strerror(errno) +
                                     " (is the nf_tables kernel module available?)");
  }
  impl_ = std::make_unique<Impl>(lib);
  impl_->ctx.reset(lib.ctxNew(NFT_CTX_DEFAULT));
  // Both buffered: a plugin's stdout belongs to the CNI result.
  if (!impl_->ctx || lib.ctxBufferOutput(impl_->ctx.get()) != 0 ||
      lib.ctxBufferError(impl_->ctx.get()) != 0) {
    throw Error(Code::Internal, "cannot set up a libnftables context");
  }
}

Context::~Context() = default;

bool Context::run(const std::string& commands, bool jsonOutput) {
  const NftablesLib& lib = impl_->lib;
  nft_ctx* ctx = impl_->ctx.get();
  lib.ctxOutputSetFlags(ctx, jsonOutput ? NFT_CTX_OUTPUT_JSON : 0);
  const int rc = lib.runCmdFromBuffer(ctx, commands.c_str());
  const char* out = lib.ctxGetOutputBuffer(ctx);
  const char* err = lib.ctxGetErrorBuffer(ctx);
  out_ = out != nullptr ? out : "";
  err_ = err != nullptr ? err : "";
  return rc == 0;
}

bool reports(const std::string& nftText, int err) {
  return nftText.find(std::strerror(err)) != std::string::npos;
}

// nft reports "Error: <reason>\n<command>\n<carets>\n" per failed command; the first line goes in
// the message, all of it in the details.
Error error(const std::string& what, const std::string& nftText) {
  std::string reason = nftText.substr(0, nftText.find('\n'));
  if (reason.rfind("Error: ", 0) == 0) reason.erase(0, 7);
  if (reason.empty()) reason = "failed without a message";
  std::string hint;
  if (reports(nftText, EPERM)) {
    hint = " (needs CAP_NET_ADMIN in the node's network namespace)";
  } else if (reports(nftText, ENOENT) || reports(nftText, EOPNOTSUPP) ||
             reports(nftText, EPROTONOSUPPORT) || reports(nftText, EAFNOSUPPORT)) {
    // A missing expression or chain type (nft_masq, nft_chain_nat, nf_nat) also shows as ENOENT.
    hint = " (is the nf_tables kernel module available, with nft_chain_nat and nft_masq?)";
  }
  return Error(Code::IoFailure, what + ": nftables: " + reason + hint, nftText);
}

std::optional<json> listJson(Context& nft, const std::string& command) {
  if (!nft.run(command, true)) {
    if (reports(nft.error(), ENOENT)) return std::nullopt;
    throw error(command, nft.error());
  }
  const json doc = sys::parseJson(nft.output(), "the output of nft " + command);
  if (!doc.is_object() || !doc.contains("nftables") || !doc["nftables"].is_array()) {
    throw Error(Code::Internal, command + ": unexpected nftables JSON output", nft.output());
  }
  return doc["nftables"];
}

const json* findSet(const json& items) {
  for (const auto& item : items) {
    if (item.is_object() && item.contains("set") && item["set"].is_object()) return &item["set"];
  }
  return nullptr;
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

namespace {

bool prefixLess(const ip::Prefix& a, const ip::Prefix& b) {
  if (a.first() != b.first()) return a.first() < b.first();
  return a.length() < b.length();
}

}  // namespace

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
    out.push_back(p.value_or(ip::Prefix(ip::Address::v4(1), 0)));
  }
  std::sort(out.begin(), out.end(), prefixLess);
  return out;
}

// CIDR prefixes either nest or are disjoint, so dropping every prefix inside another one is
// enough to make them acceptable to an interval set.
std::vector<ip::Prefix> normalized(std::vector<ip::Prefix> prefixes) {
  for (auto& p : prefixes) p = p.network();
  std::sort(prefixes.begin(), prefixes.end(), prefixLess);
  std::vector<ip::Prefix> out;
  for (const auto& p : prefixes) {
    if (!out.empty() && out.back().family() == p.family() && out.back().contains(p.first())) {
      continue;
    }
    out.push_back(p);
  }
  return out;
}

std::string elementList(const std::vector<ip::Prefix>& prefixes) {
  std::string out;
  for (const auto& p : prefixes) {
    if (!out.empty()) out += ", ";
    out += p.str();
  }
  return out;
}

}  // namespace dualstack::nft

#include "dualstack/agent/kernel.hpp"

#include <cerrno>

#include "dualstack/netlink/socket.hpp"
#include "dualstack/nft/nftables.hpp"
#include "dualstack/nft/table.hpp"

namespace dualstack::agent {

namespace {

class KernelRouteTable : public RouteTable {
 public:
  KernelRouteTable() : sock_("node netns") {}

  std::vector<netlink::Route> dump(ip::Family family) override {
    return netlink::listRoutes(sock_, family);
  }

  std::optional<netlink::Route> lookup(const ip::Address& addr) override {
    return netlink::lookupRoute(sock_, addr, true);
  }

  Outcome add(const netlink::Route& route, std::string* why) override {
    return attempt([&] { netlink::addRoute(sock_, route); }, why);
  }

  Outcome replace(const netlink::Route& route, std::string* why) override {
    return attempt([&] { netlink::replaceRoute(sock_, route); }, why);
  }

  bool remove(const netlink::Route& route) override {
    return netlink::deleteRoute(sock_, route, {}, route.protocol);
  }

 private:
  template <class F>
  static Outcome attempt(F&& f, std::string* why) {
    try {
      f();
      return Outcome::Done;
    } catch (const netlink::KernelError& e) {
      // IPv4 answers ENETUNREACH ("Nexthop has invalid gateway") for a gateway that is not on a
      // connected network, IPv6 EHOSTUNREACH.
      if (e.err() == ENETUNREACH || e.err() == EHOSTUNREACH) {
        if (why != nullptr) *why = e.msg();
        return Outcome::Unreachable;
      }
      if (e.err() == EEXIST) {
        if (why != nullptr) *why = e.msg();
        return Outcome::Exists;
      }
      throw;
    }
  }

  netlink::Socket sock_;
};

class NftClusterSets : public ClusterSets {
 public:
  // The context (and its netlink socket) is opened here, in the caller's network namespace, and
  // used from whichever thread reconciles.
  explicit NftClusterSets(std::string network)
      : network_((nft::checkNetwork(network, "--cni-network"), std::move(network))),
        nft_(std::make_unique<nft::Context>()) {}

  bool sync(const std::vector<ip::Prefix>& v4, const std::vector<ip::Prefix>& v6) override {
    nft::TableLock lock(network_);
    return nft::writeClusterSets(*nft_, network_, v4, v6, nft::readClusterSets(*nft_, network_));
  }

 private:
  std::string network_;
  std::unique_ptr<nft::Context> nft_;
};

}  // namespace

std::unique_ptr<RouteTable> kernelRouteTable() { return std::make_unique<KernelRouteTable>(); }

std::unique_ptr<ClusterSets> nftClusterSets(std::string network) {
  return std::make_unique<NftClusterSets>(std::move(network));
}

}  // namespace dualstack::agent

// Placeholder until the netlink layer lands.
namespace dualstack {}

// Placeholder until the ipam layer lands.
namespace dualstack {}

// Placeholder until the plugin layer lands.
namespace dualstack {}

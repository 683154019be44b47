// Placeholder until the netns layer lands.
namespace dualstack {}

#include "dualstack/plugin/plugin.hpp"

int main(int argc, char** argv) {
  return dualstack::cni::pluginMain(
      argc, argv,
      "dualstack: a CNI plugin giving each pod a veth pair with one IPv4 and one IPv6 address",
      dualstack::plugin::handlers());
}

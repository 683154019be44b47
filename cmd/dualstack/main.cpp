#include "dualstack/plugin/plugin.hpp"

int main(int argc, char** argv) {
  return dualstack::cni::pluginMain(argc, argv, dualstack::plugin::usage(),
                                    dualstack::plugin::handlers());
}

#include "dualstack/cni/skel.hpp"
int main(int argc, char** argv) { return dualstack::cni::pluginMain(argc, argv, "dualstack-ipam (placeholder)", {}); }

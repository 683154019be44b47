// Compiled with the test binaries' precompiled header (tests/CMakeLists.txt): its presence in
// this library is what makes CMake build that header once, for every test binary to reuse.

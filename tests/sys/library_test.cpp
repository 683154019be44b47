#include "dualstack/sys/library.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dualstack::sys {
namespace {

using ::testing::HasSubstr;

TEST(Library, ResolvesFunctionsOfALoadedLibrary) {
  Library libc("libc.so.6", "libc6");
  ASSERT_TRUE(libc.loaded()) << libc.error();
  decltype(&::getpid) pid = nullptr;
  ASSERT_TRUE(libc.resolve(pid, "getpid")) << libc.error();
  EXPECT_EQ(pid(), ::getpid());
}

TEST(Library, AMissingLibraryNamesItselfAndItsPackage) {
  Library lib("libdualstack-nonexistent.so.9", "libdualstack-nonexistent9");
  EXPECT_FALSE(lib.loaded());
  EXPECT_THAT(lib.error(), HasSubstr("cannot load libdualstack-nonexistent.so.9 ("));
  EXPECT_THAT(lib.error(), HasSubstr("): install libdualstack-nonexistent9"));
  decltype(&::getpid) fn = nullptr;
  EXPECT_FALSE(lib.resolve(fn, "getpid"));
  EXPECT_EQ(fn, nullptr);
}

TEST(Library, AMissingFunctionIsNamedAndUnloadsTheLibrary) {
  Library libc("libc.so.6", "libc6");
  ASSERT_TRUE(libc.loaded()) << libc.error();
  decltype(&::getpid) fn = nullptr;
  EXPECT_FALSE(libc.resolve(fn, "dualstack_no_such_function"));
  EXPECT_EQ(fn, nullptr);
  EXPECT_FALSE(libc.loaded());
  EXPECT_EQ(libc.error(),
            "cannot load libc.so.6 (it has no dualstack_no_such_function): install libc6");
  // Nothing resolves from an unloaded library.
  EXPECT_FALSE(libc.resolve(fn, "getpid"));
}

TEST(Library, ExtraFlagsReachTheLoader) {
  const char* soname = "libnftables.so.1";
  const auto resident = [&] {
    void* h = ::dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
    if (h != nullptr) ::dlclose(h);
    return h != nullptr;
  };
  if (resident()) GTEST_SKIP() << soname << " is loaded already";
  {
    Library lib(soname, "libnftables1");
    if (!lib.loaded()) GTEST_SKIP() << lib.error();
  }
  EXPECT_FALSE(resident()) << "unloaded with the last handle";
  {
    Library lib(soname, "libnftables1", RTLD_NODELETE);
    ASSERT_TRUE(lib.loaded()) << lib.error();
  }
  EXPECT_TRUE(resident()) << "RTLD_NODELETE keeps it mapped";
}

}  // namespace
}  // namespace dualstack::sys

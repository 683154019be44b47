// A shared library that only some runs of a binary need (libcurl for the API server,
// libnftables for masquerade), loaded with dlopen when first needed instead of linked: the
// plugins are exec'd for every pod, and linking would load and relocate the library and its
// dependencies on every exec. Only the library's header types are used at compile time; each
// function is resolved by name.
#pragma once

#include <string>

namespace dualstack::sys {

class Library {
 public:
  // dlopen(soname, RTLD_NOW | RTLD_LOCAL | flags). `debianPackage` provides the library; the
  // error names it.
  Library(const char* soname, const char* debianPackage, int flags = 0);
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  // Points fn at the library's function `name`. False when the library is not loaded or has no
  // such function; the library is unloaded then, and error() names the missing function. After a
  // failure every call is false and changes nothing, so a run of calls reports the first gap.
  template <typename F>
  bool resolve(F& fn, const char* name) {
    void* sym = symbol(name);
    if (sym == nullptr) return false;
    fn = reinterpret_cast<F>(sym);
    return true;
  }

  bool loaded() const { return handle_ != nullptr; }
  // Why it is not loaded, for an operator: "cannot load libfoo.so.1 (<what the loader said>):
  // install <debianPackage>".
  std::string error() const;

 private:
  void* symbol(const char* name);
  void unload();

  std::string soname_;
  std::string package_;
  void* handle_ = nullptr;
  std::string why_;
};

}  // namespace dualstack::sys

#include "dualstack/sys/library.hpp"

#include <dlfcn.h>

namespace dualstack::sys {

Library::Library(const char* soname, const char* debianPackage, int flags)
    : soname_(soname), package_(debianPackage) {
  handle_ = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL | flags);
  if (handle_ == nullptr) {
    const char* e = ::dlerror();
    why_ = e != nullptr ? e : "not found";
  }
}

Library::~Library() { unload(); }

void Library::unload() {
  if (handle_ != nullptr) ::dlclose(handle_);
  handle_ = nullptr;
}

void* Library::symbol(const char* name) {
  if (handle_ == nullptr) return nullptr;
  ::dlerror();  // a null symbol is only an error when dlerror() says so
  void* sym = ::dlsym(handle_, name);
  if (sym == nullptr || ::dlerror() != nullptr) {
    why_ = std::string("it has no ") + name;
    unload();
    return nullptr;
  }
  return sym;
}

std::string Library::error() const {
  return "cannot load " + soname_ + " (" + (why_.empty() ? "not loaded" : why_) + "): install " +
         package_;
}

}  // namespace dualstack::sys

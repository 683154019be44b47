#include "library.hpp"

#include <dlfcn.h>

#include "dualstack/sys/error.hpp"

namespace dualstack::nft {

namespace {

constexpr const char* kLibnftables = "libnftables.so.1";

}  // namespace

const NftablesLib& NftablesLib::get() {
  static const NftablesLib lib;
  if (lib.handle_ == nullptr) {
    throw sys::Error(
        sys::Code::IoFailure,
        "nftables needs libnftables1 (Debian package libnftables1): " + lib.loadError_);
  }
  return lib;
}

NftablesLib::NftablesLib() {
  handle_ = ::dlopen(kLibnftables, RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) {
    const char* e = ::dlerror();
    loadError_ = e != nullptr ? e : std::string("cannot load ") + kLibnftables;
    return;
  }
  const bool ok = resolve(ctxNew, "nft_ctx_new") && resolve(ctxFree, "nft_ctx_free") &&
                  resolve(ctxBufferOutput, "nft_ctx_buffer_output") &&
                  resolve(ctxBufferError, "nft_ctx_buffer_error") &&
                  resolve(ctxOutputSetFlags, "nft_ctx_output_set_flags") &&
                  resolve(ctxGetOutputBuffer, "nft_ctx_get_output_buffer") &&
                  resolve(ctxGetErrorBuffer, "nft_ctx_get_error_buffer") &&
                  resolve(runCmdFromBuffer, "nft_run_cmd_from_buffer");
  if (!ok) {
    ::dlclose(handle_);
    handle_ = nullptr;
  }
}

NftablesLib::~NftablesLib() {
  if (handle_ != nullptr) ::dlclose(handle_);
}

template <typename F>
bool NftablesLib::resolve(F& fn, const char* name) {
  ::dlerror();  // a null symbol is only an error when dlerror() says so
  void* sym = ::dlsym(handle_, name);
  const char* e = ::dlerror();
  if (sym == nullptr || e != nullptr) {
    loadError_ = e != nullptr ? e : std::string(kLibnftables) + ": no symbol " + name;
    return false;
  }
  fn = reinterpret_cast<F>(sym);
  return true;
}

}  // namespace dualstack::nft

// libnftables, loaded with dlopen the first time it is needed (private to lib/nft).
//
// The plugin is exec'd for every pod ADD/DEL and most configs never set ipMasq; linked normally,
// libnftables.so.1 and its dependencies (libmnl, libnftnl, libxtables, libjansson, libgmp) would be
// loaded and relocated on every exec. Only the types and constants of <nftables/libnftables.h> are
// used; every function is resolved with dlsym. The agent, a long-running process, goes through
// the same loader: one way into nftables for every binary.
#pragma once

#include <nftables/libnftables.h>

#include "dualstack/sys/library.hpp"

#include "dualstack/sys/error.hpp"

namespace dualstack::nft {

// The nft_* functions lib/nft uses, resolved from a dlopen'ed libnftables.so.1. The library is
// loaded once per process and stays loaded until exit.
class NftablesLib {
 public:
  // Loads the library on first use. Throws sys::Error (IoFailure) when it cannot be loaded or lacks
  // a function; the failure is remembered and thrown again on every call.
  static const NftablesLib& get();

  decltype(&::nft_ctx_new) ctxNew = nullptr;
  decltype(&::nft_ctx_free) ctxFree = nullptr;
  decltype(&::nft_ctx_buffer_output) ctxBufferOutput = nullptr;
  decltype(&::nft_ctx_buffer_error) ctxBufferError = nullptr;
  decltype(&::nft_ctx_output_set_flags) ctxOutputSetFlags = nullptr;
  decltype(&::nft_ctx_get_output_buffer) ctxGetOutputBuffer = nullptr;
  decltype(&::nft_ctx_get_error_buffer) ctxGetErrorBuffer = nullptr;
  decltype(&::nft_run_cmd_from_buffer) runCmdFromBuffer = nullptr;

 private:
  NftablesLib();

  sys::Library lib_{"libnftables.so.1", "libnftables1"};
};

}  // namespace dualstack::nft

#include "library.hpp"

#include "dualstack/sys/error.hpp"

namespace dualstack::nft {

const NftablesLib& NftablesLib::get() {
  static const NftablesLib lib;
  if (!lib.lib_.loaded()) {
    throw sys::Error(sys::Code::IoFailure, "nftables: " + lib.lib_.error());
  }
  return lib;
}

NftablesLib::NftablesLib() {
  lib_.resolve(ctxNew, "nft_ctx_new");
  lib_.resolve(ctxFree, "nft_ctx_free");
  lib_.resolve(ctxBufferOutput, "nft_ctx_buffer_output");
  lib_.resolve(ctxBufferError, "nft_ctx_buffer_error");
  lib_.resolve(ctxOutputSetFlags, "nft_ctx_output_set_flags");
  lib_.resolve(ctxGetOutputBuffer, "nft_ctx_get_output_buffer");
  lib_.resolve(ctxGetErrorBuffer, "nft_ctx_get_error_buffer");
  lib_.resolve(runCmdFromBuffer, "nft_run_cmd_from_buffer");
}

}  // namespace dualstack::nft

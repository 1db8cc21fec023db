// Fit kernels for the time-domain models (T1 relaxometry, Rabi).
#include "core/models/decays.hpp"
#include "fit_kernels.cuh"

namespace tessera::cuda {

bool launch_decays(const FitModelDesc& desc, const FitConfigDesc& config,
                   const SpectraChunk& chunk, cudaStream_t stream) {
  switch (desc.kind) {
    case FitModelKind::stretched_exp:
      launch_model(core::StretchedExp{}, config, chunk, stream);
      return true;
    case FitModelKind::damped_cosine:
      launch_model(core::DampedCosine{}, config, chunk, stream);
      return true;
    default:
      return false;
  }
}

}  // namespace tessera::cuda

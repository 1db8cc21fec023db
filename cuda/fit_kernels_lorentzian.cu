// Fit kernels for the Lorentzian peak models.
#include "fit_kernels_peaks.cuh"

namespace tessera::cuda {

bool launch_lorentzian(const FitModelDesc& desc, const FitConfigDesc& config,
                       const SpectraChunk& chunk, cudaStream_t stream) {
  return launch_peaks<core::LorentzianShape>(desc, config, chunk, stream);
}

}  // namespace tessera::cuda

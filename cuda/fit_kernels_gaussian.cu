// Fit kernels for the Gaussian peak models.
#include "fit_kernels_peaks.cuh"

namespace tessera::cuda {

bool launch_gaussian(const FitModelDesc& desc, const FitConfigDesc& config,
                     const SpectraChunk& chunk, cudaStream_t stream) {
  return launch_peaks<core::GaussianShape>(desc, config, chunk, stream);
}

}  // namespace tessera::cuda

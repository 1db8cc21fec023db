// The fit kernel (internal to cuda/): one thread per spectrum, each running
// fit_pixel (fit_pixel.hpp), which is tessera::core::lm_fit<float> plus the
// input checks. The spectra are sweep-major (see SpectraChunk), so loads coalesce.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "fit_cuda.hpp"
#include "fit_pixel.hpp"

namespace tessera::cuda {

inline constexpr int fit_block_size = 128;

template <class Model>
__global__ void __launch_bounds__(fit_block_size)
    fit_kernel(Model model, core::LMConfig<float, Model::n_params> cfg, SpectraChunk chunk) {
  const int pix = int(blockIdx.x) * fit_block_size + int(threadIdx.x);
  if (pix < chunk.n) fit_pixel(model, cfg, chunk, pix);
}

// Launches one thread per spectrum of the chunk (device pointers).
template <class Model>
void launch_model(const Model& model, const FitConfigDesc& desc, const SpectraChunk& chunk,
                  cudaStream_t stream) {
  const auto cfg = make_lm_config<Model::n_params>(desc);
  // chunk.n <= fit_max_chunk_spectra (2^30, fit_plan.hpp): the sum and the
  // thread index in fit_kernel stay within int.
  const auto blocks = unsigned((std::int64_t(chunk.n) + fit_block_size - 1) / fit_block_size);
  fit_kernel<Model><<<blocks, fit_block_size, 0, stream>>>(model, cfg, chunk);
}

// One function per model family, each in its own translation unit
// (fit_kernels_<family>.cu) so that the slow device compilation of the 34
// kernels runs in parallel. Each returns false when it has no kernel for desc.
bool launch_lorentzian(const FitModelDesc& desc, const FitConfigDesc& config,
                       const SpectraChunk& chunk, cudaStream_t stream);
bool launch_gaussian(const FitModelDesc& desc, const FitConfigDesc& config,
                     const SpectraChunk& chunk, cudaStream_t stream);
bool launch_decays(const FitModelDesc& desc, const FitConfigDesc& config,
                   const SpectraChunk& chunk, cudaStream_t stream);

// Dispatches on desc.kind; false when no kernel is compiled for the model.
bool launch_fit(const FitModelDesc& desc, const FitConfigDesc& config, const SpectraChunk& chunk,
                cudaStream_t stream);

// Sweep-major copy of pixel-major spectra on the device: in [n][n_points],
// out [n_points][n].
void transpose_to_sweep_major(const float* in, float* out, int n, int n_points,
                              cudaStream_t stream);

}  // namespace tessera::cuda

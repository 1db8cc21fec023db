// The fit kernels (internal to cuda/): a thin loop over tessera::core::lm_fit,
// one thread per spectrum, and the transpose that turns pixel-major spectra
// into the sweep-major layout the fit kernel reads. In that layout the threads
// of a warp, which fit neighbouring pixels, read neighbouring addresses at
// every sweep point, so each load of the LM loop is one coalesced transaction.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "core/fit_types.hpp"
#include "core/lm.hpp"
#include "fit_cuda.hpp"

namespace tessera::cuda {

inline constexpr int fit_block_size = 128;

// One chunk of spectra resident on the device.
struct DeviceChunk {
  const float* x;                // [n_points]
  int n_points;
  int n;                         // spectra in this chunk
  const float* y;                // [n_points][n]
  const float* w;                // [n_points][n] or nullptr
  const std::uint8_t* mask;      // [n] or nullptr
  const float* start;            // [n][P]
  float* params;                 // [n][P]
  float* sigma;                  // [n][P]
  float* chi2;                   // [n]
  std::int32_t* state;           // [n]
  std::int32_t* iterations;      // [n]
};

__device__ inline float quiet_nan() { return __int_as_float(0x7fc00000); }

// A pixel that is not fitted: its state, NaN numbers (never a silent value).
template <int P>
__device__ void write_unfitted(const DeviceChunk& c, int pix, core::FitState s) {
  const float nan = quiet_nan();
  for (int j = 0; j < P; ++j) {
    c.params[std::size_t(pix) * P + j] = nan;
    c.sigma[std::size_t(pix) * P + j] = nan;
  }
  c.chi2[pix] = nan;
  c.state[pix] = core::state_value(s);
  c.iterations[pix] = 0;
}

template <class Model>
__global__ void __launch_bounds__(fit_block_size)
    fit_kernel(Model model, core::LMConfig<float, Model::n_params> cfg, DeviceChunk c) {
  constexpr int P = Model::n_params;
  const int pix = int(blockIdx.x) * fit_block_size + int(threadIdx.x);
  if (pix >= c.n) return;

  if (c.mask && c.mask[pix]) {
    write_unfitted<P>(c, pix, core::FitState::masked);
    return;
  }
  const bool use_w = c.w && cfg.estimator == core::Estimator::lse;
  bool finite_input = true;
  for (int i = 0; i < c.n_points; ++i) {
    finite_input = finite_input && core::finite(c.y[std::size_t(i) * c.n + pix]);
    if (use_w) finite_input = finite_input && core::finite(c.w[std::size_t(i) * c.n + pix]);
  }
  if (!finite_input) {
    write_unfitted<P>(c, pix, core::FitState::nonfinite_input);
    return;
  }

  float p0[P];
  for (int j = 0; j < P; ++j) p0[j] = c.start[std::size_t(pix) * P + j];
  core::LMData<float> d;
  d.x = c.x;
  d.y = c.y + pix;
  d.w = use_w ? c.w + pix : nullptr;
  d.n = c.n_points;
  d.stride = c.n;
  const core::LMResult<float, P> r = core::lm_fit<P>(model, d, cfg, p0);

  for (int j = 0; j < P; ++j) {
    c.params[std::size_t(pix) * P + j] = r.params[j];
    c.sigma[std::size_t(pix) * P + j] = r.sigma[j];
  }
  // Only converged and iteration-limit fits report a chi-square, as on the CPU.
  const bool fitted = r.state == core::FitState::converged ||
                      r.state == core::FitState::iteration_limit;
  c.chi2[pix] = fitted ? r.chi2 : quiet_nan();
  c.state[pix] = core::state_value(r.state);
  c.iterations[pix] = r.iterations;
}

// Builds the LMConfig of a model from a FitConfigDesc and launches one thread
// per spectrum of the chunk.
template <class Model>
void launch_model(const Model& model, const FitConfigDesc& desc, const DeviceChunk& chunk,
                  cudaStream_t stream) {
  constexpr int P = Model::n_params;
  core::LMConfig<float, P> cfg;
  for (int j = 0; j < P; ++j) {
    cfg.free[j] = !desc.fixed[j];
    cfg.lo[j] = desc.lo[j];
    cfg.hi[j] = desc.hi[j];
  }
  cfg.max_iter = desc.max_iter;
  cfg.ftol = desc.tol;
  cfg.xtol = desc.tol;
  cfg.estimator = desc.estimator;
  const int blocks = (chunk.n + fit_block_size - 1) / fit_block_size;
  fit_kernel<Model><<<blocks, fit_block_size, 0, stream>>>(model, cfg, chunk);
}

// One function per model family, each in its own translation unit
// (fit_kernels_<family>.cu) so that the slow device compilation of the 34
// kernels runs in parallel. Each returns false when it has no kernel for desc.
bool launch_lorentzian(const FitModelDesc& desc, const FitConfigDesc& config,
                       const DeviceChunk& chunk, cudaStream_t stream);
bool launch_gaussian(const FitModelDesc& desc, const FitConfigDesc& config,
                     const DeviceChunk& chunk, cudaStream_t stream);
bool launch_decays(const FitModelDesc& desc, const FitConfigDesc& config,
                   const DeviceChunk& chunk, cudaStream_t stream);

// Dispatches on desc.kind; false when no kernel is compiled for the model.
bool launch_fit(const FitModelDesc& desc, const FitConfigDesc& config, const DeviceChunk& chunk,
                cudaStream_t stream);

// Sweep-major copy of pixel-major spectra on the device: in [n][n_points],
// out [n_points][n].
void transpose_to_sweep_major(const float* in, float* out, int n, int n_points,
                              cudaStream_t stream);

}  // namespace tessera::cuda

// The fit kernels' device code, with no host code and no CUDA runtime header,
// so that both nvcc (fit_kernels.cuh: the built-in models) and NVRTC (the
// models of the user's own, user_kernels.cuh) compile the same kernels:
// fit_thread_body runs one fit per thread (fit_pixel.hpp), fit_warp_body one
// fit per warp (fit_warp.hpp). fit_kernels.cuh says when each wins.
#pragma once

#include <cstdint>

#include "fit_pixel.hpp"
#include "fit_warp.hpp"

namespace tessera::cuda {

inline constexpr int fit_block_size = 128;

// The warp policy of fit_warp.hpp on the device: `lanes` and `single` end with
// __syncwarp, which also orders the lanes' shared-memory writes and reads.
struct DeviceWarp {
  int lane;
  template <class F> __device__ void lanes(F&& f) const {
    f(lane);
    __syncwarp();
  }
  template <class F> __device__ void single(F&& f) const {
    if (lane == 0) f();
    __syncwarp();
  }
};

// Warps per block of the warp-per-fit kernel: 4 x 8.9 KB of static shared
// memory for the largest model (8 peaks, linear background), under the 48 KB
// a kernel may declare, and up to 6 blocks (24 warps) per SM by memory.
inline constexpr int fit_warps_per_block = 4;

// At least 4 blocks (16 warps, 16 fits) resident per SM: a register cap of 128
// per thread. Without it the 8-peak kernel takes 178 registers and only 2 blocks
// fit; shared memory allows 6 for the largest model.
inline constexpr int fit_warp_min_blocks = 4;

// Thread t of block b fits spectrum 128 b + t.
template <class Model>
__device__ inline void fit_thread_body(const Model& model, const core::LMConfig<float, Model::n_params>& cfg,
                                       const SpectraChunk& chunk) {
  const int pix = int(blockIdx.x) * fit_block_size + int(threadIdx.x);
  if (pix < chunk.n) fit_pixel(model, cfg, chunk, pix);
}

// Warp w of block b fits spectrum 4 b + w. A warp whose spectrum is past the
// end returns as a whole, before any __syncwarp.
template <class Model>
__device__ inline void fit_warp_body(const Model& model, const core::LMConfig<float, Model::n_params>& cfg,
                                     const SpectraChunk& chunk) {
  __shared__ WarpFitScratch<Model::n_params> scratch[fit_warps_per_block];
  const int warp = int(threadIdx.x) / warp_lanes;
  const std::int64_t pix = std::int64_t(blockIdx.x) * fit_warps_per_block + warp;
  if (pix >= chunk.n) return;
  warp_fit_pixel(DeviceWarp{int(threadIdx.x) % warp_lanes}, model, cfg, chunk, int(pix), scratch[warp]);
}

template <class Model>
__global__ void __launch_bounds__(fit_block_size)
    fit_kernel(Model model, core::LMConfig<float, Model::n_params> cfg, SpectraChunk chunk) {
  fit_thread_body(model, cfg, chunk);
}

template <class Model>
__global__ void __launch_bounds__(fit_warps_per_block * warp_lanes, fit_warp_min_blocks)
    fit_warp_kernel(Model model, core::LMConfig<float, Model::n_params> cfg, SpectraChunk chunk) {
  fit_warp_body(model, cfg, chunk);
}

}  // namespace tessera::cuda

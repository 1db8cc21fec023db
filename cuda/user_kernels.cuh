// The device side of a model of the user's own on the GPU, compiled at run
// time by NVRTC (user_kernels.hpp), never by nvcc: the generated model struct
// (the same text the CPU engine compiles, fit/user_model.hpp) followed by
// TESSERA_CUDA_USER_KERNELS(UserModel), which defines the two kernels of the
// built-in models (fit_kernel_bodies.cuh) for it under C names, taking the
// configuration as the plain FitConfigDesc (the host does not know P at
// compile time). NVRTC finds <cstdint> and friends in cuda/nvrtc_std.
#pragma once

#include "cuda/fit_kernel_bodies.cuh"

#define TESSERA_CUDA_USER_KERNELS(Model)                                                             \
  extern "C" __global__ void __launch_bounds__(tessera::cuda::fit_block_size)                        \
      tessera_user_fit_thread(tessera::cuda::FitConfigDesc desc, tessera::cuda::SpectraChunk chunk) {  \
    tessera::cuda::fit_thread_body(Model{}, tessera::cuda::make_lm_config<Model::n_params>(desc), chunk); \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(                                                      \
      tessera::cuda::fit_warps_per_block * tessera::cuda::warp_lanes, tessera::cuda::fit_warp_min_blocks) \
      tessera_user_fit_warp(tessera::cuda::FitConfigDesc desc, tessera::cuda::SpectraChunk chunk) {    \
    tessera::cuda::fit_warp_body(Model{}, tessera::cuda::make_lm_config<Model::n_params>(desc), chunk);   \
  }

// The fit kernels (internal to cuda/): one thread per spectrum, running
// fit_pixel (fit_pixel.hpp: tessera::core::lm_fit<float> plus the input
// checks), or one warp per spectrum, running warp_fit_pixel (fit_warp.hpp: the
// same core::lm_* steps with the evaluation split over the lanes). The spectra
// are sweep-major (see SpectraChunk), so the thread kernel's loads coalesce.
//
// The registers, stack, spills and shared memory of each kernel, as ptxas
// reports them, are in tools/bench/README.md ("GPU kernel resources").
//
// Why one thread per fit for small models:
// - Registers. A fit's state is P parameters, gradient and scaling, the packed
//   normal matrix H (P(P+1)/2 floats) and, while the points stream past, the
//   accumulator N of [J | r]^T [J | r] ((P+1)(P+2)/2 floats: 36 for 2 peaks,
//   351 for 8 peaks + offset, 378 with a slope). Up to 2 peaks and for the
//   decays all of it fits in registers (no local memory at all); the warp's
//   32 threads read their spectra with one coalesced 128-byte load per point
//   (sweep-major chunks) and need no synchronisation.
// - From 3 peaks on, N lives in local memory (3 peaks, constant background:
//   264 B of the 560 B stack are N's 66 floats; the rest is the step's system,
//   touched once per iteration), and every point loads, updates and stores
//   all of N. At 3 peaks that is 256 resident threads x 560 B = 143 KB per SM,
//   which L1 can hold. From 4 peaks on it cannot: 256 x 1.7 KB is 430 KB,
//   and 8 peaks need 768 threads x 10.5 KB = 8 MB per SM (N alone is 2.8 KB
//   read and written per point, about 700 times the spectrum), and the hot N
//   of all resident fits (about 70 MB on an H100) is more than L2: case B is
//   then bound by local-memory traffic at about 0.5 M fits/s.
//   __launch_bounds__ or a smaller block cannot help there: the arrays are
//   indexed in loops the compiler does not unroll, so they live in local memory
//   whatever the register cap.
// Why one warp per fit from 4 peaks on (fit_warp_min_params):
// - Lane l evaluates point l of each block of 32 points and writes its row of
//   [J | r] to shared memory. (Its loads of the sweep-major spectrum are 32
//   sectors apart, one per point; the block's 4 warps fit neighbouring spectra
//   that share those sectors, and a spectrum is re-read every iteration, so L1
//   and L2 serve most of them.) Lane l
//   then owns entries l, l + 32, ... of N (11 or 12 for 8 peaks) and sums the block's
//   products into them from shared memory (rows padded to 33 floats: no bank
//   conflicts). No thread ever holds N: the 8-peak warp kernel has 128
//   registers, no spills (against 8 KB for a thread's fit) and 33 to 35 KB of
//   shared memory per block of 4 warps.
// - The step's Cholesky factorisation is shared a column at a time (lane 0
//   the pivot, lane l row j + 1 + l: about P^2 dependent steps instead of
//   P^3/6); lane 0 alone builds the damped system, solves, predicts the
//   reduction and runs the acceptance test while the other lanes wait. For 8
//   peaks the warp kernel issues about twice the instructions of a thread's
//   fit; it wins by not moving N through memory. The README gives the
//   expected figures and the next steps (the predicted reduction over the
//   lanes, a register-blocked sum of N).
// `automatic` takes the warp from 13 parameters (4 peaks) on; bench_gpu_fit
// --kernel both measures both kernels in one run to check the crossover.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "fit_cuda.hpp"
#include "fit_kernel_bodies.cuh"

namespace tessera::cuda {

// Launches the chunk's fits (device pointers): one thread per spectrum, or one
// warp per spectrum for a large model (use_warp_per_fit).
template <class Model>
void launch_model(const Model& model, const FitConfigDesc& desc, const SpectraChunk& chunk,
                  cudaStream_t stream) {
  const auto cfg = make_lm_config<Model::n_params>(desc);
  // chunk.n <= fit_max_chunk_spectra (2^30, fit_plan.hpp): the sums and the
  // thread index in fit_kernel stay within int, the block counts within the
  // 2^31 - 1 blocks of grid x.
  if (use_warp_per_fit(desc.kernel, Model::n_params)) {
    const auto blocks =
        unsigned((std::int64_t(chunk.n) + fit_warps_per_block - 1) / fit_warps_per_block);
    fit_warp_kernel<Model><<<blocks, fit_warps_per_block * warp_lanes, 0, stream>>>(model, cfg,
                                                                                   chunk);
  } else {
    const auto blocks = unsigned((std::int64_t(chunk.n) + fit_block_size - 1) / fit_block_size);
    fit_kernel<Model><<<blocks, fit_block_size, 0, stream>>>(model, cfg, chunk);
  }
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
// A model of the user's own: its NVRTC-compiled kernels (user_kernels.cu).
bool launch_user(const FitModelDesc& desc, const FitConfigDesc& config, const SpectraChunk& chunk,
                 cudaStream_t stream);

// Dispatches on desc.kind; false when no kernel is compiled for the model.
bool launch_fit(const FitModelDesc& desc, const FitConfigDesc& config, const SpectraChunk& chunk,
                cudaStream_t stream);

// Sweep-major copy of pixel-major spectra on the device: in [n][n_points],
// out [n_points][n].
void transpose_to_sweep_major(const float* in, float* out, int n, int n_points,
                              cudaStream_t stream);

}  // namespace tessera::cuda

// The fit kernel (internal to cuda/): one thread per spectrum, each running
// fit_pixel (fit_pixel.hpp), which is tessera::core::lm_fit<float> plus the
// input checks. The spectra are sweep-major (see SpectraChunk), so loads coalesce.
//
// Why one thread per fit, and where it stops paying (measured with
//   nvcc -O3 --generate-code=arch=compute_90,code=sm_90 --resource-usage,
// CUDA 13.0, for every instantiation; README "GPU backend"). Lorentzian shown;
// Gaussian is within a few bytes except 6 peaks linear (56 registers, 7120 B)
// and 8 peaks constant (255 registers, 9392 B); sm_80 (Lorentzian) agrees
// within a few registers except 6 peaks (168 / 56 registers, 5744 / 7104 B):
//
//   kernel, constant / linear      registers  stack frame  spill st/ld  blocks of 128
//   background                     per thread (local, B)   (B)          per SM (regs)
//   1 peak, const / linear          92 / 110      0 / 0      0 / 0        5 / 4
//   2 peaks                        150 / 168      0 / 0      0 / 0        3 / 3
//   3 peaks                        227 / 255    480 / 1320   0 / 136      2 / 2
//   4 peaks                        255 / 255   1744 / 2088 192 / 328      2 / 2
//   5 peaks                        255 / 255   3024 / 4024 ~860 / ~800    2 / 2
//   6 peaks                        255 / 255   5264 / 5664 ~1.7k / ~1.9k  2 / 2
//   7 peaks                         64 / 64    8624 / 8912 ~7k / ~7k      8 / 8
//   8 peaks (P = 25 / 26)          168 / 168  10176 / 10976 ~6k / ~7k     3 / 3
//   stretched_exp, damped_cosine    92, 106       0, 32      0            5, 4
//
// - Registers. A fit's state is P parameters, gradient and scaling, the packed
//   normal matrix H (P(P+1)/2 floats) and, while the points stream past, the
//   accumulator N of [J | r]^T [J | r] ((P+1)(P+2)/2 floats: 36 for 2 peaks,
//   351 for 8 peaks + offset, 378 with a slope). Up to 2 peaks all of it
//   fits in registers (no local memory at all); from 3 peaks on it does not,
//   and at 8 peaks it cannot: N alone is more than the 255 registers a thread
//   may have. The PTX of the 8-peak kernels already keeps 6.4 to 6.8 KB per
//   thread in local memory (H, the trial H, N, the Cholesky copy), before any
//   register allocation; ptxas adds its spills to reach 10 to 11 KB.
// - Occupancy (65536 registers per SM, 2048 threads): 92 registers give 640
//   resident threads per SM (31 %), 150 to 168 give 384 (19 %), 255 give 256
//   (12 %). A fit is a long chain of independent per-point work with loads
//   from one spectrum, so a few warps per scheduler with ILP hide latency for
//   the small models; for the large ones the local-memory traffic dominates.
// - Memory traffic. A thread reads its spectrum once per LM iteration, 4 bytes
//   per sweep point (400 B for 100 points, 964 B for 241), plus the shared
//   sweep x (a broadcast, cached). Sweep-major chunks make the 32 threads of a
//   warp read 32 consecutive floats (one 128-byte line) per point: fully
//   coalesced, and the warp's spectra (12.8 KB for 100 points) stay in L1/L2
//   between iterations. With N in local memory (from 3 to 4 peaks on) every
//   point also reads and writes N (in the PTX of the 8-peak kernel: a local
//   load, an FMA, an add and a local store per entry per point), 351 x 8 B =
//   2.8 KB per point for 8 peaks,
//   677 KB per iteration per fit, about 700 times the spectrum; local memory
//   is interleaved per thread, so these accesses coalesce too, but the 3.9 MB
//   of stack per SM (384 threads x 10 KB) does not fit L1 and the hot N of all
//   resident fits (about 70 MB on an H100) does not fit L2.
// - A warp per fit (lanes split the points, or the entries of N, and reduce
//   with shuffles, as Gpufit does with a block per fit) would hold N in 32
//   threads' registers (11 to 12 entries each for 8 peaks) and read the
//   spectrum with one coalesced load per 32 points; but it needs a second,
//   cooperative LM step and Cholesky (not the TESSERA_HD lm_fit the CPU runs
//   and the host tests check bit for bit), and for up to 2 peaks it wastes
//   lanes on 7-parameter algebra that one thread does in registers.
// Decision: one thread per fit for every model, which is the right choice up
// to 2 peaks and the decays (no local memory, coalesced, no synchronisation)
// and correct but memory-bound beyond (see README for the expected floors). A
// warp-per-fit kernel for 4 or more peaks, with its own consistency tests
// against this one, is the known next step; __launch_bounds__ or a smaller
// block cannot help there (the arrays are indexed in loops the compiler does
// not unroll, so they live in local memory whatever the register cap).
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

// Kernels of the GPU xcorr backend: thin loops over core/zncc.hpp and
// core/zncc_peak.hpp. Included by xcorr_cuda.cu only.
#pragma once

#include <cuda_runtime.h>

#include "core/zncc.hpp"
#include "core/zncc_peak.hpp"
#include "core/zncc_tables.hpp"

namespace tessera::cuda::xk {

// One pair of a launch: its image's and template's tables (device pointers),
// the spectra to multiply, and its slot: the product spectrum, then in place
// the numerator (C2R), then R over the searched region.
struct PairJob {
  core::ZnccImageTables im;
  core::ZnccTemplateStats t;
  const float2* ispec;
  const float2* tspec;  // a cached spectrum, or `slot` itself (transformed in place)
  float2* slot;
};

constexpr int kBX = 32, kBY = 8, kThreads = kBX * kBY;

// An image's prefix tables: one thread per row, then one per column (the
// CPU's additions in the CPU's order, core/zncc_tables.hpp). Table row 0 is
// zeroed by the caller.
__global__ void tables_rows(const float* pix, int H, int W, core::ZnccTablesOut t) {
  const int y = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (y < H) core::zncc_tables_row(pix, W, y, t);
}
__global__ void tables_cols(int H, int W, core::ZnccTablesOut t) {
  const int c = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (c <= W) core::zncc_tables_col(H, W, c, t);
}

// The transform's input, as the CPU's (core::zncc_fft_input, scale =
// 2^fft_exp), into a zeroed slot of real row stride `stride`.
__global__ void centre_into_slot(const float* pix, int H, int W, double centre, double scale, float* slot,
                                 long long stride) {
  const long long n = (long long)H * W;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    slot[(i / W) * stride + i % W] = core::zncc_fft_input(pix[i], centre, scale);
}

// The spectra product of the CPU (xcorr.cpp transform_numerator), operation for
// operation; the translation unit is compiled with --fmad=false, so with the
// same spectra it gives the same bits.
__global__ void multiply_spectra(const PairJob* jobs, long long nc, float scale) {
  const PairJob& j = jobs[blockIdx.y];
  const float2* t = j.tspec;
  const float2* s = j.ispec;
  float2* out = j.slot;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < nc;
       i += (long long)gridDim.x * blockDim.x) {
    const float2 a = t[i], b = s[i];
    const float re = a.x * b.x - a.y * b.y;
    const float im = a.x * b.y + a.y * b.x;
    out[i] = make_float2(re * scale, im * scale);
  }
}

__device__ inline core::ZnccBest shfl_down(core::ZnccBest b, int off) {
  return {__shfl_down_sync(0xffffffffu, b.value, off), __shfl_down_sync(0xffffffffu, b.y, off),
          __shfl_down_sync(0xffffffffu, b.x, off)};
}

// Block reduction of candidates; the result is valid in thread 0. The combine
// is a selection by a total order, so the result does not depend on the tree.
__device__ inline core::ZnccBest block_best(core::ZnccBest b) {
  __shared__ core::ZnccBest warp_best[kThreads / 32];
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  for (int off = 16; off > 0; off >>= 1) b = core::zncc_best_combine(b, shfl_down(b, off));
  if ((tid & 31) == 0) warp_best[tid >> 5] = b;
  __syncthreads();
  if (tid == 0)
    for (int w = 1; w < kThreads / 32; ++w) b = core::zncc_best_combine(b, warp_best[w]);
  return b;
}

__device__ inline float block_max(float m) {
  __shared__ float warp_max[kThreads / 32];
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  for (int off = 16; off > 0; off >>= 1) m = core::zncc_max(m, __shfl_down_sync(0xffffffffu, m, off));
  if ((tid & 31) == 0) warp_max[tid >> 5] = m;
  __syncthreads();
  if (tid == 0)
    for (int w = 1; w < kThreads / 32; ++w) m = core::zncc_max(m, warp_max[w]);
  return m;
}

// The fused normalisation and argmax: one thread per placement of region r
// (blocks kBX x kBY, grid z = the pair), R = core::zncc_placement written over
// the numerator, one candidate per block into partial.
__global__ void __launch_bounds__(kThreads)
    normalise_argmax(const PairJob* jobs, core::ZnccRegion r, long long stride, double eps, double min_overlap,
                     core::ZnccBest* partial) {
  const PairJob& j = jobs[blockIdx.z];
  const int x = r.x0 + int(blockIdx.x) * kBX + int(threadIdx.x);
  const int y = r.y0 + int(blockIdx.y) * kBY + int(threadIdx.y);
  core::ZnccBest b = core::zncc_best_none();
  if (y <= r.y1 && x <= r.x1) {
    float* p = reinterpret_cast<float*>(j.slot) + (long long)y * stride + x;
    const bool inside = min_overlap <= 0 || core::zncc_overlap_ok(y, x, j.t.h, j.t.w, j.im.H, j.im.W,
                                                                   min_overlap * double(j.t.h) * double(j.t.w));
    const float R = inside ? core::zncc_placement(j.im, j.t, y, x, *p, eps) : 0.0f;
    *p = R;
    b = {R, y, x};
  }
  b = block_best(b);
  if (threadIdx.x == 0 && threadIdx.y == 0)
    partial[((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x] = b;
}

// One block per pair: the candidates of its n blocks into best[pair].
__global__ void __launch_bounds__(kThreads)
    reduce_best(const core::ZnccBest* partial, int n, core::ZnccBest* best) {
  const core::ZnccBest* p = partial + (long long)blockIdx.x * n;
  core::ZnccBest b = core::zncc_best_none();
  for (int i = threadIdx.y * blockDim.x + threadIdx.x; i < n; i += kThreads)
    b = core::zncc_best_combine(b, p[i]);
  b = block_best(b);
  if (threadIdx.x == 0 && threadIdx.y == 0) best[blockIdx.x] = b;
}

// The second-best pass: the largest R of the region outside the exclusion
// window of the peak, one maximum per block (same grid as normalise_argmax).
__global__ void __launch_bounds__(kThreads)
    second_best(const PairJob* jobs, const core::ZnccBest* best, core::ZnccRegion r,
                long long stride, int exclusion, float* partial) {
  const PairJob& j = jobs[blockIdx.z];
  const core::ZnccBest peak = best[blockIdx.z];
  const int x = r.x0 + int(blockIdx.x) * kBX + int(threadIdx.x);
  const int y = r.y0 + int(blockIdx.y) * kBY + int(threadIdx.y);
  float m = -HUGE_VALF;
  if (y <= r.y1 && x <= r.x1 && !core::zncc_excluded(y, x, peak, exclusion))
    m = reinterpret_cast<const float*>(j.slot)[(long long)y * stride + x];
  m = block_max(m);
  if (threadIdx.x == 0 && threadIdx.y == 0)
    partial[((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x] = m;
}

// The peak's record, as the CPU's find_peak.
struct PeakOut {
  core::ZnccBest best;
  core::ZnccPeakShape shape;
  float peak_ratio;
};

// One block per pair: the second best from the partial maxima, then thread 0
// runs the CPU's peak-quality code on the map's neighbourhood of the peak.
__global__ void __launch_bounds__(kThreads)
    peak_quality(const PairJob* jobs, const core::ZnccBest* best, const float* partial, int n,
                 core::ZnccRegion r, long long stride, PeakOut* out) {
  const float* p = partial + (long long)blockIdx.x * n;
  float m = -HUGE_VALF;
  for (int i = threadIdx.y * blockDim.x + threadIdx.x; i < n; i += kThreads)
    m = core::zncc_max(m, p[i]);
  m = block_max(m);
  if (threadIdx.x == 0 && threadIdx.y == 0) {
    const core::ZnccBest b = best[blockIdx.x];
    const core::ZnccMapView map{reinterpret_cast<const float*>(jobs[blockIdx.x].slot), stride};
    out[blockIdx.x] = {b, core::zncc_peak_shape(map, r, b), core::zncc_peak_ratio(b.value, m)};
  }
}

}  // namespace tessera::cuda::xk

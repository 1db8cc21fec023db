// How fit_batch_cuda cuts a batch of spectra into chunks: a pure function of the
// sizes, the free device memory and the limits below, with no CUDA call, so that
// it is tested on every machine (tests/cuda/test_fit_plan.cpp) and reads the
// same on the device side and in tests.
//
// Each of the `slots` streams owns one chunk's device buffers and one chunk's
// pinned host staging; while one stream's kernel runs, the next stream's copies
// proceed. The chunk is the smallest of:
//   - what half the free device memory holds for all slots together (the other
//     half is left to the driver, other contexts and the kernel's local memory);
//   - what the pinned staging budget holds for all slots together;
//   - fit_max_chunk_spectra, so that a spectrum index within a chunk, the grid
//     size and the kernel's int arithmetic never overflow, whatever the batch
//     (Gpufit returns zeros at 10^7 fits: every offset into a batch here is
//     64-bit, and every offset within a chunk is below 2^31 elements or 64-bit);
//   - the caller's max_chunk, when given;
//   - for a batch much larger than the device holds at once, a share of it that
//     gives every stream at least two chunks (so copies overlap computation),
//     but never below min_chunk (the fits the device runs at once, to keep it
//     full);
//   - the batch itself.
// Results never depend on the plan: each fit reads its own spectrum only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tessera::cuda {

// Spectra per chunk at most: 2^30, so that chunk + block size stays an int.
inline constexpr std::int64_t fit_max_chunk_spectra = std::int64_t(1) << 30;
// Sweep points per spectrum at most: the device transpose puts ceil(n_points / 32)
// blocks on grid y (at most 65535), and one thread holds a whole fit anyway.
inline constexpr int fit_max_points = 1 << 20;
// Streams (and buffer slots) that fit_batch_cuda uses.
inline constexpr int fit_streams = 2;
// Pinned host memory for all slots together, by default.
inline constexpr std::size_t fit_pinned_budget = std::size_t(512) << 20;

struct FitChunkRequest {
  std::int64_t n_pix = 0;
  int n_points = 0;
  int n_params = 0;
  bool weights = false;      // a weight per point, same layout as the spectra
  bool mask = false;         // a byte per spectrum
  bool pixel_major = false;  // spectra arrive [pix][point]: a device staging buffer for the transpose
  std::size_t free_device_bytes = 0;
  std::size_t pinned_budget = fit_pinned_budget;
  std::int64_t max_chunk = 0;  // 0: no limit of the caller's
  std::int64_t min_chunk = 1;  // fits the device runs at once (SMs x threads per SM)
  int streams = fit_streams;
};

struct FitChunkPlan {
  std::int64_t chunk = 0;     // spectra per chunk (the last may hold fewer)
  std::int64_t n_chunks = 0;  // ceil(n_pix / chunk); 0 for an empty batch
  int slots = 0;              // streams used: min(streams, n_chunks)
  std::size_t device_bytes_per_spectrum = 0;
  std::size_t pinned_bytes_per_spectrum = 0;

  // First spectrum of chunk k and its size (64-bit: a batch may pass 2^31).
  [[nodiscard]] std::int64_t begin(std::int64_t k, std::int64_t n_pix) const {
    return std::min(k * chunk, n_pix);
  }
  [[nodiscard]] std::int64_t size(std::int64_t k, std::int64_t n_pix) const {
    return std::min(chunk, n_pix - begin(k, n_pix));
  }
};

// Device bytes one spectrum takes in a slot: spectrum (and weights), the
// transpose staging, start / params / sigma, chi2, state, iterations, mask.
[[nodiscard]] inline std::size_t fit_device_bytes_per_spectrum(const FitChunkRequest& r) {
  const std::size_t np = std::size_t(r.n_points), P = std::size_t(r.n_params);
  return np * sizeof(float) * (1 + (r.weights ? 1 : 0) + (r.pixel_major ? 1 : 0)) +
         3 * P * sizeof(float) + sizeof(float) + 2 * sizeof(std::int32_t) + (r.mask ? 1 : 0);
}

// Pinned host bytes one spectrum takes in a slot: its inputs on the way in,
// its results on the way out.
[[nodiscard]] inline std::size_t fit_pinned_bytes_per_spectrum(const FitChunkRequest& r) {
  const std::size_t np = std::size_t(r.n_points), P = std::size_t(r.n_params);
  return np * sizeof(float) * (1 + (r.weights ? 1 : 0)) + 3 * P * sizeof(float) +
         sizeof(float) + 2 * sizeof(std::int32_t) + (r.mask ? 1 : 0);
}

// Throws std::invalid_argument for sizes out of range and std::runtime_error
// when not even one spectrum fits in half the free device memory.
[[nodiscard]] inline FitChunkPlan plan_fit_chunks(const FitChunkRequest& r) {
  if (r.n_pix < 0) throw std::invalid_argument("CUDA fit: negative number of spectra");
  if (r.n_points < 1 || r.n_points > fit_max_points)
    throw std::invalid_argument("CUDA fit: a spectrum must have 1 to " +
                                std::to_string(fit_max_points) + " sweep points");
  if (r.n_params < 1) throw std::invalid_argument("CUDA fit: no parameters");
  if (r.streams < 1) throw std::invalid_argument("CUDA fit: at least one stream");
  FitChunkPlan p;
  p.device_bytes_per_spectrum = fit_device_bytes_per_spectrum(r);
  p.pinned_bytes_per_spectrum = fit_pinned_bytes_per_spectrum(r);
  if (r.n_pix == 0) return p;

  const auto slots = std::int64_t(r.streams);
  std::int64_t chunk = std::int64_t(r.free_device_bytes / 2 / p.device_bytes_per_spectrum) / slots;
  if (chunk < 1) {
    // One slot may still fit where `streams` do not: fewer streams, no overlap.
    chunk = std::int64_t(r.free_device_bytes / 2 / p.device_bytes_per_spectrum);
    if (chunk < 1)
      throw std::runtime_error("CUDA fit: not enough free device memory for one spectrum");
  }
  chunk = std::min(chunk, std::max<std::int64_t>(
                              1, std::int64_t(r.pinned_budget / p.pinned_bytes_per_spectrum) / slots));
  chunk = std::min(chunk, fit_max_chunk_spectra);
  if (r.max_chunk > 0) chunk = std::min(chunk, r.max_chunk);
  const std::int64_t share = (r.n_pix + 2 * slots - 1) / (2 * slots);
  chunk = std::min(chunk, std::max(share, std::max<std::int64_t>(r.min_chunk, 1)));
  chunk = std::max<std::int64_t>(1, std::min(chunk, r.n_pix));

  p.chunk = chunk;
  p.n_chunks = (r.n_pix + chunk - 1) / chunk;
  p.slots = int(std::min<std::int64_t>(slots, p.n_chunks));
  // Where only one slot's buffers fit the device, use one.
  if (std::int64_t(r.free_device_bytes / 2 / p.device_bytes_per_spectrum) < chunk * p.slots)
    p.slots = 1;
  return p;
}

}  // namespace tessera::cuda

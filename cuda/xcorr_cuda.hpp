// The GPU xcorr backend as plain host types and functions: no CUDA header is
// needed to call it (like cuda/fit_cuda.hpp). It computes exactly the CPU
// backend's function (src/xcorr): the numerator by cuFFT float R2C/C2R at the
// same padded size and from the same float inputs, then, per placement of the
// searched region, core::zncc_placement (the shared per-placement formula) and
// the peak with the functions of core/zncc_peak.hpp. cuFFT rounds differently
// from FFTW, so coordinates agree and peaks agree to ~1e-6, not to the bit.
//
// On the device:
//  - template spectra: every template of a call is transformed once (batched
//    R2C) and kept, when they fit in a quarter of the budget; else each pair
//    transforms its template into its own slot;
//  - images: taken in groups that fit the budget (pairs sorted by image), each
//    image's pixels uploaded once, its prefix tables built and its spectrum
//    computed once on the device (batched R2C);
//  - pairs in launches of `batch` slots: the spectra product, one batched C2R
//    in place, then one fused kernel (R for every placement of the region,
//    written over the numerator, and a per-block argmax), a deterministic
//    reduction, the second-best pass outside the exclusion window and the peak
//    quality (one thread per pair, the CPU's code); the peaks are copied back
//    per launch.
// The batch counts are constants of the config, never derived from free
// memory, so every rank runs the same cuFFT plans and the bits do not depend on
// the number of ranks or on the device's load.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/zncc.hpp"
#include "core/zncc_peak.hpp"

namespace tessera::cuda {

// An image: its pixels and the two scalars of core::ZnccImageTables that need
// the whole image (xcorr::image_data). The prefix tables are built on the
// device (core/zncc_tables.hpp: the CPU's additions in the CPU's order, so the
// same bits): 4 bytes per pixel cross the bus instead of 32.
struct XcorrImageDesc {
  const float* pixels = nullptr;  // [H][W] after normalize_input
  int H = 0, W = 0;
  double centre = 0;      // subtracted before the transform
  double flat_bound = 0;  // core::zncc_flat_bound
  int fft_exp = 0;        // then scaled by 2^fft_exp (core::zncc_fft_exp)
};

struct XcorrTemplateDesc {
  const float* pixels = nullptr;  // [h][w] (xcorr::template_pixels)
  double tbar = 0;                // xcorr::template_mean
  core::ZnccTemplateStats stats{};  // host tables (xcorr::zncc_stats)
};

// One call: every image has the same shape, every template too (the CLI's
// case; group heterogeneous sets by shape first). fft_rows/cols and region
// come from xcorr::fft_size and xcorr::search_region for that shape.
struct XcorrPairsDesc {
  const XcorrImageDesc* images = nullptr;
  int n_images = 0;
  const XcorrTemplateDesc* templates = nullptr;
  int n_templates = 0;
  const std::int32_t* pairs = nullptr;  // [n_pairs][2]: image index, template index
  std::int64_t n_pairs = 0;
  int fft_rows = 0, fft_cols = 0;  // fft_cols even
  core::ZnccRegion region{};
  double eps = 1e-6;
  double min_overlap = 0;  // R = 0 below min_overlap * h * w template pixels inside the image
  int exclusion = 5;
  // --top: when set, called on the calling thread for every pair with its
  // index and its normalised searched region (rows region.y0 .. y1, columns
  // region.x0 .. x1, row-major, dense), so that the host finds the pair's
  // candidates with the CPU's own function on the GPU's map.
  std::function<void(std::int64_t pair, const float* region_map)> region_map;
};

// The fields of xcorr::Peak.
struct XcorrPeakDesc {
  int y = -1, x = -1;
  float value = 0;
  double sub_y = 0, sub_x = 0;
  float sharpness = 0, peak_ratio = 0;
};

struct XcorrCudaConfig {
  // Device memory for spectra, tables and pair slots; 0: half the free memory
  // when the context is created. Results do not depend on it.
  std::int64_t memory_budget = 0;
  int batch = 8;        // pairs per C2R launch (the plan's batch count)
  int fft_batch = 4;    // images or templates per R2C launch
};

// A device context: plans, buffers and a stream on the current device (select
// it with cuda::set_device first, on the calling thread). Throws
// std::runtime_error (one line) for a CUDA or cuFFT error, including no device.
class XcorrCuda {
 public:
  explicit XcorrCuda(const XcorrCudaConfig& config = {});
  ~XcorrCuda();
  XcorrCuda(const XcorrCuda&) = delete;
  XcorrCuda& operator=(const XcorrCuda&) = delete;

  // The peaks of every pair, into out[n_pairs] in the order of the pairs.
  // done(n) is called on the calling thread as launches finish. Throws
  // std::invalid_argument for inconsistent sizes, std::runtime_error for a
  // CUDA error or a budget too small for one image and one launch.
  void correlate(const XcorrPairsDesc& pairs, XcorrPeakDesc* out,
                 const std::function<void(std::int64_t)>& done = {});

  // Device bytes held now (caches and slots of the last call).
  std::int64_t device_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::cuda

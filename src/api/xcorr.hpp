// Cross-correlation of (image, template) pairs on arrays in memory: the
// function `tessera xcorr` computes (DESIGN.md, "Xcorr: semantics"), without
// MPI and without HDF5. The command reads, splits and gathers; the pairs it
// computes go through the same PairCorrelator, so the library and the command
// give the same bits for the same input, whatever the grouping of the pairs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "api/array.hpp"
#include "api/cancel.hpp"
#include "xcorr/xcorr.hpp"

namespace tessera::api {

struct XcorrOptions {
  // Rows dropped at the top and bottom, columns at the left and right, of the
  // full map before the peak search; coordinates stay in the full-map frame.
  int crop_y = 0, crop_x = 0;
  double eps = 1e-6;             // R = 0 where the squared denominator <= eps
  double min_overlap = 0;        // R = 0 where fewer than min_overlap*h*w template pixels are inside the image
  bool normalize_input = false;  // subtract each image's mean first
  std::string mode = "full";     // "full" or "valid" (full-overlap placements only)
  int exclusion = 5;             // peak_ratio: the second value is the best farther than this
  // --top K: also the K highest local maxima of the searched region (>= 1;
  // unset: none). --min-distance D (>= 0, only with top; unset: exclusion):
  // each kept maximum is more than D placements (Chebyshev) from every higher one.
  std::optional<int> top;
  std::optional<int> min_distance;
  int threads = 0;               // 0: the cores this process may use (its affinity mask)
  // A wisdom file (api/fft_wisdom.hpp): FFTW_MEASURE plans read from it, or
  // measured and written to it when it lacks them; "": FFTW_ESTIMATE. CPU only.
  std::string fft_wisdom;
  // "cpu", "cuda" or "auto" (the GPU when this build has CUDA and a device is
  // visible, else the CPU). The GPU computes the same function; its FFTs round
  // differently, so peaks agree to about 1e-6, not to the bit.
  std::string backend = "cpu";
  int device = -1;  // CUDA device; -1: device 0
  // Called with the number of pairs finished since the last call, from the
  // library's worker threads, one call at a time.
  std::function<void(std::int64_t)> progress;
  // When set to true, the call throws Cancelled at its next check (between
  // pairs on the CPU, between launches on the GPU).
  const std::atomic<bool>* cancel = nullptr;

  // True when the options are usable; else false and *why (when given) is the
  // one-line reason, in the command's words ("--eps must be finite and >= 0").
  bool IsValid(std::string* why) const;
  // The options of src/xcorr. Throws std::invalid_argument unless IsValid.
  xcorr::Options internal() const;
  // threads, with 0 replaced by the usable cores.
  int thread_count() const;
};

// Per pair, in the order of the pair list: the values and types that
// `tessera xcorr` writes to /coords, /peaks, /quality and /subpixel.
struct XcorrResult {
  std::int64_t n_pairs = 0;
  std::vector<std::int64_t> coords;  // [p][2]: (y, x) in the full (H+h-1) x (W+w-1) map
  std::vector<float> peaks;          // [p]: R at the peak
  std::vector<float> quality;        // [p][2]: sharpness, peak_ratio
  std::vector<double> subpixel;      // [p][2]: (y, x) refined by a parabola
  // With top = K (else empty, top_k 0): the candidates of /top_coords and
  // /top_peaks, highest first, (-1, -1) and NaN where a pair has fewer than K.
  std::int64_t top_k = 0;
  std::vector<std::int64_t> top_coords;  // [p][K][2]: (y, x), full-map frame like coords
  std::vector<float> top_peaks;          // [p][K]: R there

  // Sized for n pairs (and top_k candidates each), filled with values no pair
  // can have (-1, NaN), so that a pair left out can never look like a result.
  void resize(std::int64_t n, std::int64_t top_k = 0);
  // Pair p's values from its peak (and its top_k candidates, when top_k > 0):
  // the one mapping from xcorr::Peak to the output's columns.
  void set(std::int64_t p, const xcorr::Peak& peak, std::span<const core::ZnccBest> top = {});
};

// images [n, H, W] and templates [k, h, w] of any numeric type and strides
// (converted to float as HDF5 converts a dataset read); pairs [p, 2] of an
// integer type: (image index, template index). image_masks / template_masks
// (optional, either alone): shaped like images / templates, any numeric type,
// nonzero = valid (masked ZNCC, DESIGN.md as README's "Masks" extends it); a
// mask without an invalid pixel changes nothing. With masks "auto" picks the
// CPU; "cuda" does the masked pairs' double correlations with cuFFT. Throws std::invalid_argument
// with a one-line message for bad options or input (the command's words, with
// "images:", "templates:", "pairs:" where the command names the dataset),
// Cancelled when options.cancel is set, std::runtime_error for a GPU failure.
XcorrResult xcorr(const Array3& images, const Array3& templates, const Array2& pairs,
                  const XcorrOptions& options, const Array3& image_masks = {},
                  const Array3& template_masks = {});

// ---- the input checks that the library and the command share ------------------
// Each returns "" when the input is fine, else the one-line reason (without the
// file or array name, which the caller puts in front).

// pairs [p][2], flattened: "pair P names image A, outside [0, n)".
std::string check_pair_indices(std::span<const std::int64_t> pairs, std::int64_t n_images,
                               std::int64_t n_templates);
// Images too large for the int arithmetic of the map's coordinates.
std::string check_image_size(std::int64_t H, std::int64_t W);
// A template larger than the images ("templates 30x5 are larger than the images
// 19x23 ..."): as normxcorr2, each template must fit inside its image.
std::string check_template_fits(std::int64_t H, std::int64_t W, std::int64_t h, std::int64_t w);
// Frames of h x w floats, frame f holding frame number frames[f] of the array:
// "image 2 has a non-finite value (nan) at (3, 4)" for the first such value;
// what: "image" or "template".
std::string check_finite(std::span<const float> data, std::span<const std::int64_t> frames,
                         std::int64_t h, std::int64_t w, const char* what);

// Mask values of the listed frames (h x w each, read as double) to 0/1 bytes in
// out, nonzero = valid; "" or "mask 2 has a non-finite value (nan) at (3, 4)"
// (a NaN in a mask is a mistake, not a valid pixel).
std::string mask_to_bytes(std::span<const double> values, std::span<const std::int64_t> frames,
                          std::int64_t h, std::int64_t w, std::uint8_t* out);
// The same from floats (masks of any type but float64: every nonzero integer
// stays nonzero as a float).
std::string mask_to_bytes(std::span<const float> values, std::span<const std::int64_t> frames,
                          std::int64_t h, std::int64_t w, std::uint8_t* out);
// "" when masks of `shape` fit frames of `frames_shape`, else the reason
// ("shape [2, 5, 5] differs from the images' [3, 5, 5]"); what: "images" or
// "templates".
std::string check_mask_shape(std::span<const std::int64_t> shape, std::span<const std::int64_t> frames_shape,
                             const char* what);

// ---- the engine under xcorr() and under the command's batches -------------------

// count frames of height x width floats, contiguous and row-major.
struct Frames {
  const float* data = nullptr;
  std::int64_t count = 0;
  int height = 0, width = 0;
  const std::uint8_t* masks = nullptr;  // count frames of 0/1 (1 = valid), or nullptr: no masks
};

// Correlates batches of pairs with one set of options on one backend, keeping
// the GPU's plans and device buffers from one batch to the next. On the CPU an
// image is prepared by the thread that correlates its pairs and released after
// them (xcorr::correlate_image_groups), so a batch holds about one prepared
// image per thread; the GPU takes the batch's images prepared all at once.
class PairCorrelator {
 public:
  // options: checked (std::invalid_argument); threads >= 1; backend "cpu" or
  // "cuda" (already chosen: a build without CUDA refuses "cuda"); device: the
  // CUDA device, made current on the thread that calls correlate().
  PairCorrelator(const xcorr::Options& options, int threads, const std::string& backend,
                 int device);
  ~PairCorrelator();
  PairCorrelator(const PairCorrelator&) = delete;
  PairCorrelator& operator=(const PairCorrelator&) = delete;

  bool on_gpu() const { return on_gpu_; }

  // The peaks of pairs (local indices into images and templates), in the order
  // of the pairs, which must be grouped by image (all pairs of an image
  // consecutive). Every image has one shape, every template one shape, all
  // values finite. cache_template_spectra (CPU): a flag per template, nonzero
  // to keep its spectra once computed instead of recomputing them per pair
  // (same bits either way; shorter than the templates: the rest are not kept).
  // done(n) is called as pairs finish (worker threads on the CPU, the calling
  // thread on the GPU); an exception it throws stops the work and is rethrown
  // here.
  // With options.top_k > 0 and `top`: *top gets pair i's candidates at
  // [i * top_k, (i + 1) * top_k) (xcorr::correlate_pairs).
  std::vector<xcorr::Peak> correlate(const Frames& images, const Frames& templates,
                                     std::span<const std::pair<int, int>> pairs,
                                     std::span<const std::uint8_t> cache_template_spectra,
                                     const std::function<void(std::int64_t)>& done = {},
                                     std::vector<core::ZnccBest>* top = nullptr);

 private:
  xcorr::Options options_;
  int threads_;
  bool on_gpu_;
  int device_;
  struct Gpu;  // the device context, only in a build with CUDA
  std::unique_ptr<Gpu> gpu_;
};

}  // namespace tessera::api

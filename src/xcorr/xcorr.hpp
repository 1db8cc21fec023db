// Full-mode zero-normalised cross-correlation of float images [H, W] with float
// templates [h, w] (row-major, contiguous), with the semantics of DESIGN.md
// ("Xcorr: semantics"; MATLAB normxcorr2, skimage match_template(pad_input=True)):
// the map is (H+h-1) x (W+w-1); map index (y, x) puts the template's top-left
// corner at image position (y-h+1, x-w+1).
//
// How it is computed:
//  - the numerator sum(image * (template - tbar)) by FFTW float r2c/c2r at sizes
//    padded to 7-smooth lengths (products of 2, 3, 5, 7), with the image centred
//    on its mean before the transform and the exact correction for the padding
//    added back in double (less float cancellation for images with a large offset);
//  - the window sums S1, S2 from 2-D prefix sums in double;
//  - a window in which every pixel of the padded image is equal has variance
//    exactly 0, so R is exactly 0 there, whatever the rounding of the double sums
//    (core/zncc.hpp: a bound on that rounding, then exact integer counts);
//  - R = 0 where (S2 - S1^2/A) * SSD_T <= eps (core/zncc.hpp);
//  - the normalisation, the peak search and the peak's quality in one pass over
//    the searched region (mode and crop), never over the rest of the map.
//
// Reuse. A PreparedImage holds one image's pixels, prefix sums and spectra (one
// per padded FFT size); a PreparedTemplate holds one template's statistics and,
// when asked to, its spectra. Each is transformed at most once per FFT size, so
// a batch grouped by image transforms every image and template once. Both are
// safe to share between threads (their lazy parts are built under a lock);
// a Workspace (FFT buffers) belongs to one thread. FFTW plans are created with
// FFTW_ESTIMATE (no timing), or from wisdom shared by every process
// (fft_plans.hpp), so every process makes the same plan and results are
// bit-identical whatever the number of ranks, threads or the grouping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/zncc.hpp"
#include "core/zncc_peak.hpp"

namespace tessera::xcorr {

enum class Mode {
  full,   // every placement with any overlap: (H+h-1) x (W+w-1)
  valid,  // only full-overlap placements: y in [h-1, H-1], x in [w-1, W-1]
};

struct Options {
  // Rows dropped at the top and at the bottom, and columns dropped at the left
  // and at the right, of the full map before the peak search. Coordinates stay
  // in the full-map frame.
  int crop_y = 0;
  int crop_x = 0;
  double eps = 1e-6;             // R = 0 where the squared denominator <= eps
  bool normalize_input = false;  // subtract the image's mean first (on a copy)
  // valid: the search covers only full-overlap placements (OpenCV's
  // TM_CCOEFF_NORMED map is that block of the full map); coordinates are still
  // in the full-map frame, so subtract (h-1, w-1) for OpenCV's. With a crop
  // too, the search covers the intersection of both.
  Mode mode = Mode::full;
  // Peak quality: the second-best value is the largest R at a Chebyshev
  // distance > exclusion from the peak (in placements).
  int exclusion = 5;
  // R = 0 where fewer than min_overlap * h * w template pixels fall inside the
  // image (0: every placement, normxcorr2's map; core::zncc_overlap_ok).
  double min_overlap = 0;
  // FFT plans from imported wisdom only (fft_plans.hpp: import_fft_wisdom
  // first, for the sizes used), instead of FFTW_ESTIMATE. A prepared image or
  // template keeps the spectra of the first mode it is used with: use each
  // with one mode.
  bool fft_from_wisdom = false;
  // --top K --min-distance D: besides the peak, the K highest local maxima of
  // the searched region, each more than min_distance placements (Chebyshev)
  // from every higher one kept (top_candidates). 0: none, and nothing is spent
  // on them.
  int top_k = 0;
  int min_distance = 5;
};

struct Peak {
  int y, x;     // full-map coordinates
  float value;  // R at the peak
  // Sub-placement position: y + dy, x + dx, from a parabola through the peak
  // and its two neighbours along each axis (dy, dx in (-0.5, 0.5]; 0 where a
  // neighbour lies outside the searched region or the parabola is not concave).
  double sub_y, sub_x;
  // The peak minus the mean of its (up to 8) neighbours in the searched region;
  // 0 when it has none. Larger is sharper.
  float sharpness;
  // value / (largest R farther than `exclusion` from the peak); +inf when that
  // second value is <= 0 or there is no placement that far. Larger is more
  // distinct; near 1 means another placement matches almost as well.
  float peak_ratio;
};

// Plain row-major view of a float array; data is never modified. mask: the
// same shape, nonzero where a pixel is valid (masked ZNCC, src/xcorr/masked.hpp),
// or nullptr: every pixel valid. A mask without an invalid pixel is no mask.
struct View {
  const float* data;
  int height, width;
  const std::uint8_t* mask = nullptr;
};

// Search region of the full map for an image and template shape: rows
// [y0, y1] and columns [x0, x1], inclusive. Throws std::invalid_argument if the
// crop leaves nothing.
struct Region {
  int y0, y1, x0, x1;
};
Region search_region(int H, int W, int h, int w, const Options& options);

// The padded FFT size (rows, columns) used for an image and template shape:
// 7-smooth, large enough that the circular correlation is exact on the search
// region (the full map needs H+h-1 x W+w-1; valid mode only H x W).
std::pair<int, int> fft_size(int H, int W, int h, int w, const Options& options);
// The same for a given region r of the map: the smallest 7-smooth size (even
// columns) on which the circular correlation is exact over r.
std::pair<int, int> fft_size(int H, int W, int h, int w, Region r);

class Workspace;

class PreparedImage {
 public:
  // Copies the image (subtracting its mean with normalize_input) and builds
  // its prefix sums (or, with a mask that has an invalid pixel, keeps the mask
  // for the masked path instead). Throws std::invalid_argument for an empty image or a
  // non-finite value (naming its position). Without host_tables (the GPU
  // backend, which builds its own on the device) the prefix sums are left
  // out: the pixels, centre and flat bound (image_data) are the same, and the
  // CPU functions that need the sums throw std::logic_error.
  PreparedImage(View image, bool normalize_input, bool host_tables = true);
  ~PreparedImage();
  PreparedImage(const PreparedImage&) = delete;
  PreparedImage& operator=(const PreparedImage&) = delete;

  int height() const;
  int width() const;
  // Bytes held now (pixels, prefix sums, spectra computed so far).
  std::size_t bytes() const;
  // The mask has an invalid pixel: every pair of this image is masked.
  bool masked() const;
  // Computes (once) the spectrum that correlate() needs against templates of
  // h x w with these options; nothing when such a template does not fit.
  void transform_for(int h, int w, const Options& options, Workspace& workspace) const;

  struct Data;
  const Data& data() const { return *d_; }

 private:
  std::unique_ptr<Data> d_;
};

class PreparedTemplate {
 public:
  // Copies the template (and its mask, when it has an invalid pixel) and
  // computes its statistics. Throws
  // std::invalid_argument for an empty template or a non-finite value. With
  // cache_spectra, each spectrum is kept once computed; without, it is
  // recomputed for every pair (same bits either way).
  PreparedTemplate(View templ, bool cache_spectra);
  ~PreparedTemplate();
  PreparedTemplate(const PreparedTemplate&) = delete;
  PreparedTemplate& operator=(const PreparedTemplate&) = delete;

  int height() const;
  int width() const;
  std::size_t bytes() const;
  bool masked() const;  // as PreparedImage::masked
  // With cache_spectra, computes (once) the spectrum that correlate() needs
  // against images of H x W with these options; otherwise nothing.
  void transform_for(int H, int W, const Options& options, Workspace& workspace) const;

  struct Data;
  const Data& data() const { return *d_; }

 private:
  std::unique_ptr<Data> d_;
};

// FFT buffers for one thread.
class Workspace {
 public:
  Workspace();
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  // Masked pairs correlated through this workspace send their double
  // correlations to f (the GPU backend: cuda/xcorr_masked_cuda.hpp) instead of
  // FFTW; everything else stays on the host. f(a, b, py, px, out): out = the
  // inverse transform of FFT(a) * FFT(b) / (py * px), padded host arrays.
  void set_masked_correlator(std::function<void(const double*, const double*, int, int, double*)> f);
  struct Buffers;
  Buffers& buffers() { return *b_; }

 private:
  std::unique_ptr<Buffers> b_;
};

// The peak of one (image, template) pair over the searched region. A pair in
// which either side is masked() takes the masked ZNCC (src/xcorr/masked.hpp);
// any other pair today's, bit for bit. Throws
// std::invalid_argument when the template is larger than the image or the
// crop leaves nothing to search. With full_map, also the whole map (every
// placement, whatever the mode and crop), row-major. With options.top_k > 0
// and a `top` of top_k entries, also the pair's candidates (top_candidates of
// the map just searched, so the first is the peak).
Peak correlate(const PreparedImage& image, const PreparedTemplate& templ, const Options& options,
               Workspace& workspace, std::vector<float>* full_map = nullptr,
               std::span<core::ZnccBest> top = {});

// --top: the candidates of region r of an R map (row stride `stride`) into
// top[0, K), K = top.size(): detail::top_peaks (peak_search.hpp) with
// min_distance, highest first, the entries beyond the candidates found set to
// missing_top_peak(). Both backends call it, so the same map gives the same
// candidates.
void top_candidates(const float* map, int stride, Region r, int min_distance, std::span<core::ZnccBest> top);
// An entry of a top list with no candidate: (y, x) = (-1, -1), value NaN.
core::ZnccBest missing_top_peak();

// Peaks of many pairs: pair i correlates images[pairs[i].first] with
// templates[pairs[i].second]. The threads first transform every image (and
// every template that caches its spectra) the pairs need, then take the pairs
// in the given order; done(n) is called from the worker threads as pairs finish.
// Results are in the order of `pairs` and do not depend on `threads`. The first
// exception of any thread is rethrown after all have stopped. With
// options.top_k > 0 and `top`, *top gets pair i's candidates (correlate) at
// [i * top_k, (i + 1) * top_k).
std::vector<Peak> correlate_pairs(std::span<const PreparedImage* const> images,
                                  std::span<const PreparedTemplate* const> templates,
                                  std::span<const std::pair<int, int>> pairs,
                                  const Options& options, int threads,
                                  const std::function<void(std::size_t)>& done = {},
                                  std::vector<core::ZnccBest>* top = nullptr);

// The same as correlate_pairs for raw images, with less memory: `pairs` must be
// grouped by image (all pairs of an image consecutive). Each image is prepared
// by the thread that takes its group, transformed, correlated with the
// group's templates and released, so a rank holds about one prepared image per
// thread instead of all of them (and reuses their memory instead of faulting in
// new pages). With fewer groups than threads, the images are prepared first and
// the pairs shared out as by correlate_pairs. The template spectra are computed
// first, in parallel. Same results, bit for bit, as correlate_pairs (top too).
std::vector<Peak> correlate_image_groups(std::span<const View> images, bool normalize_input,
                                         std::span<const PreparedTemplate* const> templates,
                                         std::span<const std::pair<int, int>> pairs,
                                         const Options& options, int threads,
                                         const std::function<void(std::size_t)>& done = {},
                                         std::vector<core::ZnccBest>* top = nullptr);

// Runs f(i) for i in [0, n) over `threads` threads (dynamic assignment); the
// first exception is rethrown after all threads have stopped.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& f);

// The inputs of core::zncc_placement, for the GPU backend and for tests that
// check the CPU passes against it: the image's tables (the exact flatness
// counts are built on this call if they were not yet) and the template's
// statistics. Valid while the prepared object lives.
core::ZnccImageTables zncc_tables(const PreparedImage& image);
core::ZnccTemplateStats zncc_stats(const PreparedTemplate& templ);
// What a GPU backend takes of an image: its pixels after normalize_input
// (H*W, row-major; the transform takes them minus centre), the centre and the
// flat bound of ZnccImageTables (it builds the prefix tables itself with the
// same bits, core/zncc_tables.hpp); of a template, its pixels (h*w) and mean
// tbar (and zncc_stats). Valid while the object lives.
struct ImageData {
  std::span<const float> pixels;
  int height, width;
  double centre, flat_bound;
  int fft_exp;  // core::ZnccImageTables::fft_exp
};
ImageData image_data(const PreparedImage& image);
std::span<const float> template_pixels(const PreparedTemplate& templ);
double template_mean(const PreparedTemplate& templ);
// The CPU backend's peak search over region r of an R map (row stride
// `stride`): argmax with ties to the first in row-major order, then the
// sub-placement position and quality of Peak, with the functions of
// core/zncc_peak.hpp that the GPU backend also runs.
Peak find_peak(const float* map, int stride, Region r, int exclusion);
// The transform's numerator sum((image - centre) * (template - tbar)) for every
// placement of the full map, (H+h-1) x (W+w-1) row-major, before normalisation,
// scaled as the transform computes it: by 2^(fft_exp of zncc_tables(image) +
// that of zncc_stats(templ)) (core::zncc_placement's fft_num).
std::vector<float> numerator_map(const PreparedImage& image, const PreparedTemplate& templ,
                                 Workspace& workspace);

// One image against several templates, one at a time (tests and simple uses).
class Correlator {
 public:
  explicit Correlator(Options options = {});
  ~Correlator();
  Correlator(const Correlator&) = delete;
  Correlator& operator=(const Correlator&) = delete;

  // See PreparedImage; drops the previous image.
  void set_image(View image);
  // The full (H+h-1) x (W+w-1) map, row-major (whatever the mode and crop).
  std::vector<float> map(View templ);
  // The peak over the searched region (mode and crop), ties to the first in
  // row-major order.
  Peak peak(View templ);

  const Options& options() const { return options_; }

 private:
  Options options_;
  std::unique_ptr<PreparedImage> image_;
  std::unique_ptr<Workspace> workspace_;
};

// One-shot helpers (transform the image each call).
std::vector<float> xcorr_map(View image, View templ, const Options& options = {});
Peak xcorr_peak(View image, View templ, const Options& options = {});

// Checks the options; throws std::invalid_argument with a one-line message.
void validate(const Options& options);

// Smallest n' >= n whose prime factors are all in {2, 3, 5, 7}; even if even_only.
int fast_fft_size(int n, bool even_only = false);

}  // namespace tessera::xcorr

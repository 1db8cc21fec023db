// Full-mode zero-normalised cross-correlation of one float image [H, W] with one
// float template [h, w] (row-major, contiguous), with the semantics of DESIGN.md
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
//  - a window in which every pixel of the padded image is equal (tested exactly
//    with integer counts of unequal neighbours) has variance exactly 0, so R is
//    exactly 0 there, whatever the rounding of the double sums;
//  - R = 0 where (S2 - S1^2/A) * SSD_T <= eps (core/zncc.hpp).
//
// A Correlator holds one image: its spectrum is cached per padded FFT size, so
// several templates against one image transform it once; FFTW plans are cached
// per size. A Correlator is not thread-safe; use one per thread (plan creation
// is serialised internally, so several Correlators may live in several threads).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <utility>
#include <vector>

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
  double eps = 1e-6;             // R = 0 where the denominator <= eps
  bool normalize_input = false;  // subtract the image's mean first (on a copy)
  // valid: the search covers only full-overlap placements (OpenCV's
  // TM_CCOEFF_NORMED map is that block of the full map); coordinates are still
  // in the full-map frame, so subtract (h-1, w-1) for OpenCV's. With a crop
  // too, the search covers the intersection of both.
  Mode mode = Mode::full;
};

struct Peak {
  int y, x;     // full-map coordinates
  float value;  // R at the peak
};

// Plain row-major view of a float array; data is never modified.
struct View {
  const float* data;
  int height, width;
};

class Correlator {
 public:
  explicit Correlator(Options options = {});
  ~Correlator();
  Correlator(const Correlator&) = delete;
  Correlator& operator=(const Correlator&) = delete;

  // Copies the image (subtracting its mean with normalize_input). Throws
  // std::invalid_argument for an empty image or a non-finite value. Drops the
  // cached spectra of the previous image (the plans stay).
  void set_image(View image);

  // The full (H+h-1) x (W+w-1) map, row-major (whatever the mode and crop).
  std::vector<float> map(View templ);
  // The largest R in the search region (mode and crop), ties to the first in
  // row-major order. Throws std::invalid_argument if the region is empty.
  Peak peak(View templ);

  const Options& options() const { return options_; }

 private:
  struct Plan;
  struct ImageData;
  // Fills map_ (R for every full-map placement, as float) for templ.
  void correlate(View templ);
  Plan& plan_for(int py, int px);

  Options options_;
  std::unique_ptr<ImageData> image_;
  std::map<std::pair<int, int>, std::unique_ptr<Plan>> plans_;
  std::vector<float> map_;
};

// One-shot helpers (transform the image each call).
std::vector<float> xcorr_map(View image, View templ, const Options& options = {});
Peak xcorr_peak(View image, View templ, const Options& options = {});

// Smallest n' >= n whose prime factors are all in {2, 3, 5, 7}; even if even_only.
int fast_fft_size(int n, bool even_only = false);

}  // namespace tessera::xcorr

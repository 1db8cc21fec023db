// The geometry of a correlation: option checks, the searched region of the
// map and the padded FFT size that makes the circular correlation exact on it
// (xcorr.hpp). Pure functions of the shapes and options.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "xcorr.hpp"

namespace tessera::xcorr {

void validate(const Options& o) {
  if (!(o.eps >= 0) || !std::isfinite(o.eps))
    throw std::invalid_argument("xcorr: eps must be finite and >= 0");
  if (o.crop_y < 0 || o.crop_x < 0) throw std::invalid_argument("xcorr: crop must be >= 0");
  if (o.exclusion < 0) throw std::invalid_argument("xcorr: exclusion must be >= 0");
  if (o.top_k < 0) throw std::invalid_argument("xcorr: top_k must be >= 0");
  if (o.min_distance < 0) throw std::invalid_argument("xcorr: min_distance must be >= 0");
}

Region search_region(int H, int W, int h, int w, const Options& o) {
  const int mh = H + h - 1, mw = W + w - 1;
  Region r{o.crop_y, mh - 1 - o.crop_y, o.crop_x, mw - 1 - o.crop_x};
  if (o.mode == Mode::valid) {
    r.y0 = std::max(r.y0, h - 1), r.y1 = std::min(r.y1, H - 1);
    r.x0 = std::max(r.x0, w - 1), r.x1 = std::min(r.x1, W - 1);
  }
  if (r.y0 > r.y1 || r.x0 > r.x1)
    throw std::invalid_argument("xcorr: crop " + std::to_string(o.crop_y) + "," +
                                std::to_string(o.crop_x) + " leaves no placement of the " +
                                std::to_string(mh) + "x" + std::to_string(mw) + " map to search");
  return r;
}

// The transform is circular: at size N along an axis, map index y receives the
// linear correlation at y + m N for every integer m. The linear correlation
// lives on [0, H+h-2], so rows [y0, y1] are exact when N > y1 (no m < 0 term)
// and N >= H+h-1-y0 (no m > 0 term), and the image must fit, N >= H: the full
// map needs N >= H+h-1, valid mode (y0 = h-1, y1 = H-1) only N >= H, a crop A
// only max(H, H+h-1-A). Same for columns (even, for the real transforms).
std::pair<int, int> fft_size(int H, int W, int h, int w, Region r) {
  return {fast_fft_size(std::max({H, r.y1 + 1, H + h - 1 - r.y0})),
          fast_fft_size(std::max({W, r.x1 + 1, W + w - 1 - r.x0}), true)};
}

std::pair<int, int> fft_size(int H, int W, int h, int w, const Options& options) {
  return fft_size(H, W, h, w, search_region(H, W, h, w, options));
}

int fast_fft_size(int n, bool even_only) {
  if (n < 1) n = 1;
  for (int m = n;; ++m) {
    if (even_only && (m & 1)) continue;
    int r = m;
    for (int f : {2, 3, 5, 7})
      while (r % f == 0) r /= f;
    if (r == 1) return m;
  }
}

}  // namespace tessera::xcorr

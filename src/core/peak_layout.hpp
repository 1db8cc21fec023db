// The parameter layout of the peak models, defined once for the CPU and GPU
// kernels, the starts, the outputs and the plots: offset, [slope], then per peak
// k its position, full width at half maximum and amplitude (DESIGN.md). Peaks are
// numbered in order of position.
#pragma once

#include "hd.hpp"

namespace tessera::core {

// The most peaks a model may have. Every peak count is a compile-time
// instantiation of the fit kernels (CPU lanes and GPU), so the limit bounds the
// build; 8 covers the four NV axes' two resonances each, and 8 peaks with a
// linear background (26 parameters) keep the GPU's per-fit normal matrix within
// a block's shared memory.
inline constexpr int max_peaks = 8;

struct PeakLayout {
  static constexpr int offset = 0;    // index of the constant background
  static constexpr int slope = 1;     // index of the slope, when linear
  static constexpr int per_peak = 3;  // pos, fwhm, amp
  int n_peaks = 1;
  bool linear_background = false;

  TESSERA_HD static constexpr int first_peak(bool linear) { return linear ? 2 : 1; }
  TESSERA_HD static constexpr int n_params(int n_peaks, bool linear) {
    return first_peak(linear) + per_peak * n_peaks;
  }
  TESSERA_HD constexpr int first_peak() const { return first_peak(linear_background); }
  TESSERA_HD constexpr int n_params() const { return n_params(n_peaks, linear_background); }
  TESSERA_HD constexpr int pos(int k) const { return first_peak() + per_peak * k; }
  TESSERA_HD constexpr int fwhm(int k) const { return pos(k) + 1; }
  TESSERA_HD constexpr int amp(int k) const { return pos(k) + 2; }
};

// The largest parameter count of any built-in model.
inline constexpr int max_params = PeakLayout::n_params(max_peaks, true);

}  // namespace tessera::core

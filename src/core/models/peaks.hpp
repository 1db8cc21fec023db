// Peak models: offset [+ slope (x - x_mid)] + sum over k of amp_k * s(u_k), with
// u_k = 2 (x - pos_k) / fwhm_k, s the unit-height line shape. Parameters, in
// order: offset, [slope], then per peak pos, fwhm, amp (DESIGN.md).
// Like every model here, eval returns the value without the additive offset
// p[0] (model.hpp says why); eval_full adds it.
#pragma once

#include "../hd.hpp"
#include "../model.hpp"
#include "../peak_layout.hpp"
#include "../scalar_math.hpp"

namespace tessera::core {

// Lorentzian line shape 1 / (1 + u^2) and its derivative in u.
struct LorentzianShape {
  template <class T> TESSERA_HD static void eval(T u, T& s, T& ds_du) {
    s = T(1) / (T(1) + u * u);
    ds_du = T(-2) * u * s * s;
  }
};

// Gaussian line shape exp(-ln2 u^2) (= exp(-4 ln2 (x - pos)^2 / fwhm^2)).
struct GaussianShape {
  template <class T> TESSERA_HD static void eval(T u, T& s, T& ds_du) {
    constexpr double ln2 = 0.69314718055994530942;
    s = vexp(T(ScalarOf<T>(-ln2)) * u * u);
    ds_du = T(ScalarOf<T>(-2 * ln2)) * u * s;
  }
};

template <class Shape, int NPeaks, bool Linear> struct PeakModel {
  static_assert(NPeaks >= 1, "at least one peak");
  static constexpr int n_peaks = NPeaks;
  static constexpr bool linear = Linear;
  static_assert(NPeaks <= max_peaks, "more peaks than the kernels are built for");
  static constexpr int first_peak = PeakLayout::first_peak(Linear);
  static constexpr int n_params = PeakLayout::n_params(NPeaks, Linear);
  static constexpr bool additive_offset = true;

  double x_mid = 0;  // centre of the sweep, origin of the slope term

  // f(x; p) - p[0] and df/dp_j for j < n_params.
  template <class T>
  TESSERA_HD void eval(ScalarOf<T> x, const T* p, T& f, T* J) const {
    using S = ScalarOf<T>;
    f = T(0);
    J[0] = T(1);
    if constexpr (Linear) {
      const T dx = T(x - S(x_mid));
      f = p[1] * dx;
      J[1] = dx;
    }
    for (int k = 0; k < NPeaks; ++k) {
      const int b = first_peak + PeakLayout::per_peak * k;
      const T pos = p[b], fwhm = p[b + 1], amp = p[b + 2];
      const T inv_fwhm = T(1) / fwhm;
      const T u = T(2) * (T(x) - pos) * inv_fwhm;
      T s, ds;
      Shape::eval(u, s, ds);
      const T a_ds = amp * ds * inv_fwhm;
      f += amp * s;
      J[b] = T(-2) * a_ds;     // du/dpos = -2/fwhm
      J[b + 1] = -(a_ds * u);  // du/dfwhm = -u/fwhm
      J[b + 2] = s;
    }
  }

  static constexpr bool is_position(int j) {
    return j >= first_peak && (j - first_peak) % PeakLayout::per_peak == 0;
  }
};

template <int N, bool Linear> using Lorentzian = PeakModel<LorentzianShape, N, Linear>;
template <int N, bool Linear> using Gaussian = PeakModel<GaussianShape, N, Linear>;

}  // namespace tessera::core

// Zero-normalised cross-correlation (ZNCC) of one placement of a template over a
// zero-padded image, from window sums (DESIGN.md, "Xcorr: semantics"). Host and
// device (TESSERA_HD), so a CUDA kernel computes the same function as the CPU.
//
// For one placement, with A = h*w the window area:
//   S1 = sum of the padded image under the window, S2 = sum of its squares,
//   C  = sum(image * template) under the window,
//   tbar, SSD_T = the template's mean and centred sum of squares,
//   R  = (C - S1*tbar) / sqrt((S2 - S1*S1/A) * SSD_T),
// and R = 0 where that denominator <= eps (a flat window or a flat template).
// The window sums are double: in float, S2 - S1*S1/A cancels catastrophically
// and a flat window gets a spurious variance (rcc-xcorr's +-0.015).
#pragma once

#include <math.h>

#include "hd.hpp"

namespace tessera::core {

// The window's centred sum of squares S2 - S1^2/A, never negative (rounding can
// push it just below zero for an almost flat window).
TESSERA_HD inline double zncc_window_ssd(double s1, double s2, double area) {
  const double v = s2 - s1 * s1 / area;
  return v > 0.0 ? v : 0.0;
}

// R from the centred numerator num = sum(image * (template - tbar)) under the
// window (equal to C - S1*tbar) and the window's centred sum of squares.
TESSERA_HD inline double zncc_from_centred(double num, double window_ssd, double ssd_t,
                                           double eps) {
  const double denom = window_ssd * ssd_t;
  if (!(denom > eps)) return 0.0;  // also catches a NaN denominator
  return num / sqrt(denom);
}

// R from the raw sums, exactly the formula of DESIGN.md.
TESSERA_HD inline double zncc_from_sums(double c, double s1, double s2, double area,
                                        double tbar, double ssd_t, double eps) {
  return zncc_from_centred(c - s1 * tbar, zncc_window_ssd(s1, s2, area), ssd_t, eps);
}

// Clipped extent of a placement along one axis: the window covering full-map
// index p (0 <= p < n + k - 1) of a template of length k over an image of length
// n spans image indices [p - k + 1, p]; lo/hi are that span clipped to [0, n).
// off is the template index that lands on image index lo.
struct ZnccSpan {
  int lo, hi, off;  // inclusive image range, template offset of lo
};
TESSERA_HD inline ZnccSpan zncc_span(int p, int k, int n) {
  const int start = p - k + 1;
  ZnccSpan s;
  s.lo = start > 0 ? start : 0;
  s.hi = p < n - 1 ? p : n - 1;
  s.off = s.lo - start;
  return s;
}

}  // namespace tessera::core

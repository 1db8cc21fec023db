// Masked ZNCC of one placement (issue 15; DESIGN.md "Xcorr: semantics" as
// README's "Masks" extends it), from six sums over the pixels valid in both
// the image and the template (the zero padding outside the image is invalid):
//   n   = the number of such pixels,
//   si  = sum of I,   si2 = sum of I^2,   st = sum of T,   st2 = sum of T^2,
//   sit = sum of I*T,
// I and T each shifted by a constant first (the image's and the template's
// mean over their valid pixels: Pearson's R does not change, the sums cancel
// less). Then
//   R = (sit - si*st/n) / sqrt((si2 - si^2/n) * (st2 - st^2/n)),
// clamped to [-1, 1], and R = 0 where n < min_count (--min-overlap times the
// template's valid pixel count), where n = 0, or where either variance term is
// <= its bound (max(--eps, the rounding bound of that term's sums: a window
// whose valid pixels are all equal has the exact value 0 and a computed one
// below the bound, so R is exactly 0 there, as today's flat windows)).
// Host and device (TESSERA_HD): the CPU runs it over a row of sums
// (src/xcorr/masked.cpp), a GPU kernel can call it per placement.
#pragma once

#include <math.h>

#include "hd.hpp"

namespace tessera::core {

// A variance term s2 - s^2/n of the sums of one side (0 for n = 0, whose
// sums are 0).
TESSERA_HD inline double zncc_masked_variance(double n, double s, double s2) {
  const double nn = n > 0.5 ? n : 1.0;
  return s2 - s * s / nn;
}

// R from the count, the two sides' sums and variance terms
// (zncc_masked_variance) and sit. Written as selects, not branches, so that a
// loop over a row vectorises.
TESSERA_HD inline float zncc_masked(double n, double si, double var_i, double st, double var_t, double sit,
                                    double min_count, double bound_i, double bound_t) {
  const bool overlap = n >= min_count && n > 0.5;  // n is a count (rounded when transformed)
  const double nn = overlap ? n : 1.0;
  const bool ok = overlap && var_i > bound_i && var_t > bound_t;  // false for NaN too
  const double r = (sit - si * st / nn) / sqrt(ok ? var_i * var_t : 1.0);
  const double clamped = r > 1.0 ? 1.0 : (r < -1.0 ? -1.0 : r);
  return ok ? float(clamped) : 0.0f;
}

// A bound on the rounding error of one value of the double-precision FFT
// correlation of arrays X and Y (any placement) on an N-point transform:
// forward transforms off by at most ~5 u log2 N times their 2-norm, the
// product amplifying one side's error by the other's largest coefficient
// (at most its 1-norm), the inverse adding as much again; the max error is at
// most the 2-norm of the error. 8 u log2 N (|X|_2 |Y|_1 + |X|_1 |Y|_2) keeps a
// margin over that; callers keep another factor 16, as zncc_flat_bound.
TESSERA_HD inline double zncc_fft_error_bound(double log2_n, double x_norm1, double x_norm2,
                                              double y_norm1, double y_norm2) {
  const double u = 1.1102230246251565e-16;
  return 8.0 * u * log2_n * (x_norm2 * y_norm1 + x_norm1 * y_norm2);
}

// The same for a rect sum of an (rows+1) x (cols+1) double prefix table of an
// array whose absolute values sum to norm1 (as zncc_flat_bound: each entry a
// sum of at most rows+cols+2 rounded additions, four entries per rect sum).
TESSERA_HD inline double zncc_prefix_error_bound(int rows, int cols, double norm1) {
  const double u = 1.1102230246251565e-16;
  return 4.0 * (double(rows) + double(cols) + 2.0) * u * norm1;
}

// The bound on a variance term s2 - s1^2/n from the bounds e1, e2 on s1 and s2,
// with |value| <= max_abs for every valid value (so |s1|/n <= max_abs): its
// error is at most e2 + 2 max_abs e1 (+ the rounding of the formula itself,
// within the factor 16).
TESSERA_HD inline double zncc_variance_bound(double e1, double e2, double max_abs) {
  return 16.0 * (e2 + 2.0 * max_abs * e1);
}

}  // namespace tessera::core

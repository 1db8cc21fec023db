// Zero-normalised cross-correlation (ZNCC) of one placement of a template over a
// zero-padded image, from window sums (DESIGN.md, "Xcorr: semantics"). Host and
// device (TESSERA_HD), so a CUDA kernel computes the same function as the CPU.
//
// For one placement, with A = h*w the window area:
//   S1 = sum of the padded image under the window, S2 = sum of its squares,
//   C  = sum(image * template) under the window,
//   tbar, SSD_T = the template's mean and centred sum of squares,
//   R  = (C - S1*tbar) / sqrt((S2 - S1*S1/A) * SSD_T),
// and R = 0 where the squared denominator (S2 - S1*S1/A) * SSD_T <= eps (a flat
// window or a flat template). Not the denominator itself: with eps = 1e-6 on
// the denominator, placements that see a few pixels of a smooth image's tail
// pass, and there the float FFT's rounding of C outweighs the denominator
// (R ~ 1 where the exact value is -0.02: Xcorr.SubpixelPositionAndPeakQuality).
// The window sums are double: in float, S2 - S1*S1/A cancels catastrophically
// and a flat window gets a spurious variance (rcc-xcorr's +-0.015).
#pragma once

#include <math.h>
#include <stdint.h>

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
// Written as selects, not a branch, so that the CPU's row passes
// (core/zncc_rows.hpp) vectorise it.
TESSERA_HD inline double zncc_from_centred(double num, double window_ssd, double ssd_t,
                                           double eps) {
  const double denom = window_ssd * ssd_t;
  const bool ok = denom > eps;  // false for a NaN denominator too
  const double r = num / sqrt(ok ? denom : 1.0);
  return ok ? r : 0.0;
}

// 1/sqrt of a centred sum of squares (a window's or the template's), 0 for 0
// (a flat window, a flat template).
TESSERA_HD inline double zncc_inv_sd(double ssd) { return ssd > 0.0 ? 1.0 / sqrt(ssd) : 0.0; }

// The power of two by which an image's or a template's centred values are
// scaled before the single-precision transform, from their largest magnitude
// max_abs: it brings them near 1, so that the spectra and their product stay
// inside float's range whatever the data's units (unscaled, values from about
// 1e17 up overflowed into NaN maps, and values below about 1e-20 lost their
// digits to underflow). Scaling by a power of two is exact in every operation
// of the transform, so R has the bits it would have without it wherever that
// did not overflow or underflow. 0 for max_abs 0 or not finite.
TESSERA_HD inline int zncc_fft_exp(double max_abs) {
  if (!(max_abs > 0.0) || !(max_abs < 1.0e300)) return 0;
  int e = 0;
  frexp(max_abs, &e);  // max_abs = m 2^e, 0.5 <= m < 1
  return -e;
}

// The factor that takes a transform's output back to the data's units:
// 2^-(image fft_exp + template fft_exp), exact.
TESSERA_HD inline double zncc_fft_unscale(int image_exp, int template_exp) {
  return ldexp(1.0, -(image_exp + template_exp));
}

// One pixel's input to the transform: (pixel - centre) 2^fft_exp in double,
// rounded to float (scale = ldexp(1, fft_exp), taken once per image or
// template). Both backends fill their transforms with it.
TESSERA_HD inline float zncc_fft_input(float pixel, double centre, double scale) {
  return float((double(pixel) - centre) * scale);
}

// The window's 1/sqrt as the CPU's window tables store it: rounded to float,
// which halves what a pair reads per placement and changes R by a relative
// 6e-8 at most, far below the float transform's own error. It is stored times
// 2^-fft_exp (the image's transform scale, zncc_fft_exp), which keeps it near
// 1/sqrt(window area) and inside float's range whatever the data's units;
// zncc_inv_sd_from_table takes it back, exactly. Both backends round it so,
// and give the same bits. The factors, into the table and back, are taken once
// per image (zncc_table_scale).
struct ZnccTableScale {
  double in, out;  // 2^-fft_exp, 2^fft_exp
};
TESSERA_HD inline ZnccTableScale zncc_table_scale(int fft_exp) { return {ldexp(1.0, -fft_exp), ldexp(1.0, fft_exp)}; }
TESSERA_HD inline float zncc_inv_sd_table(double ssd, ZnccTableScale s) { return float(zncc_inv_sd(ssd) * s.in); }
TESSERA_HD inline double zncc_inv_sd_from_table(float stored, ZnccTableScale s) { return double(stored) * s.out; }

// What both backends compute: zncc_from_centred with the window's 1/sqrt
// taken once per image and template shape (the CPU's window tables) and the
// template's once per template, so a placement costs two multiplications
// instead of a square root and a division. The test "denominator^2 <= eps" is
// window_ssd * ssd_t <= eps written as ssd_t <= eps * inv_w^2 (inv_w =
// zncc_inv_sd(window_ssd)); the two differ by rounding only at the boundary.
TESSERA_HD inline double zncc_from_inverse(double num, double inv_w, double ssd_t, double inv_t, double eps) {
  const bool ok = inv_w > 0.0 && ssd_t > eps * inv_w * inv_w;  // false for NaN too
  const double r = num * inv_w * inv_t;
  return ok ? r : 0.0;
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

// --min-overlap: whether placement (y, x) of an h x w template over an H x W
// image has at least min_count of its pixels inside the image (the overlap is
// a rectangle: the rows inside times the columns inside). R = 0 where not.
TESSERA_HD inline bool zncc_overlap_ok(int y, int x, int h, int w, int H, int W, double min_count) {
  const ZnccSpan sy = zncc_span(y, h, H), sx = zncc_span(x, w, W);
  return double(sy.hi - sy.lo + 1) * double(sx.hi - sx.lo + 1) >= min_count;
}

// Sum of a 2-D prefix table P (P[(r+1)*w1 + c+1] = sum over rows [0, r] and
// columns [0, c]) over rows [r0, r1] and columns [c0, c1], inclusive and not
// empty. The association is fixed, (row difference at c1+1) - (row difference
// at c0), so that a loop that first forms the row differences of rows r0 and
// r1+1 gets the same bits.
template <class T>
TESSERA_HD inline T zncc_rect_sum(const T* P, long long w1, int r0, int r1, int c0, int c1) {
  const T* a = P + (long long)r0 * w1;
  const T* b = P + (long long)(r1 + 1) * w1;
  return (b[c1 + 1] - a[c1 + 1]) - (b[c0] - a[c0]);
}

// One image's tables for the normalisation (all (H+1) x (W+1) prefix tables).
struct ZnccImageTables {
  const double* s1;        // prefix sums of the image (after normalize_input)
  const double* s2;        // prefix sums of its squares
  const int32_t* nonzero;  // prefix counts of pixels != 0
  const int32_t* diff_h;   // prefix counts of pixels != their left neighbour
  const int32_t* diff_v;   // prefix counts of pixels != their upper neighbour
  int H, W;
  double centre;      // subtracted from the image before its transform
  double flat_bound;  // zncc_flat_bound of the image
  int fft_exp = 0;    // the transform's input is (pixel - centre) * 2^fft_exp (zncc_fft_exp)
};

// One template's statistics.
struct ZnccTemplateStats {
  const double* tc;  // (h+1) x (w+1) prefix sums of template - tbar
  int h, w;
  double ssd_t;     // centred sum of squares
  int fft_exp = 0;  // the transform's input is (pixel - tbar) * 2^fft_exp (zncc_fft_exp)
};

// A bound on the computed S2 - S1^2/A of a window whose pixels are all equal
// (true value 0): every prefix entry is a sum of at most H+W+2 rounded additions
// of terms whose total is at most s2_total (resp. abs1_total), so each rect sum
// is off by at most 4 (H+W+2) u times that total, u = 2^-53, and
// S2 - S1^2/A by at most that of S2 plus 2 |S1|/A = 2 max|pixel| times that of
// S1. The bound keeps a factor 16 above that worst case. A window whose computed
// variance exceeds it is certainly not flat; one below it is checked exactly.
TESSERA_HD inline double zncc_flat_bound(int H, int W, double s2_total, double abs1_total,
                                         double max_abs) {
  const double u = 1.1102230246251565e-16;
  return 16.0 * 4.0 * (double(H) + double(W) + 2.0) * u * (s2_total + 2.0 * max_abs * abs1_total);
}

// Whether every pixel of the zero-padded image under the window is equal:
// for a window inside the image, no pixel differs from its left or upper
// neighbour within the window; for one that overlaps the padding, every image
// pixel under it is 0.
TESSERA_HD inline bool zncc_window_flat(const ZnccImageTables& im, bool inside, ZnccSpan sy,
                                        ZnccSpan sx) {
  const long long w1 = im.W + 1;
  if (inside)
    return (sx.hi == sx.lo || zncc_rect_sum(im.diff_h, w1, sy.lo, sy.hi, sx.lo + 1, sx.hi) == 0) &&
           (sy.hi == sy.lo || zncc_rect_sum(im.diff_v, w1, sy.lo + 1, sy.hi, sx.lo, sx.hi) == 0);
  return zncc_rect_sum(im.nonzero, w1, sy.lo, sy.hi, sx.lo, sx.hi) == 0;
}

// Whether a span covers the whole template length k (no padding on that axis).
TESSERA_HD inline bool zncc_full(ZnccSpan s, int k) { return s.hi - s.lo + 1 == k; }

// R at full-map placement (y, x), from fft_num = the transform's
// sum((image - centre) * (template - tbar)) under the window, scaled by
// 2^(im.fft_exp + t.fft_exp) as the transform's inputs were. This is the
// definition of the per-placement computation; the GPU backend calls it from
// its kernel, the CPU backend runs core/zncc_rows.hpp, the same operations in
// the same order as row passes (tests compare the bits).
TESSERA_HD inline float zncc_placement(const ZnccImageTables& im, const ZnccTemplateStats& t, int y,
                                       int x, float fft_num, double eps) {
  const ZnccSpan sy = zncc_span(y, t.h, im.H), sx = zncc_span(x, t.w, im.W);
  const bool inside = zncc_full(sy, t.h) && zncc_full(sx, t.w);
  const long long w1 = im.W + 1;
  const double s1 = zncc_rect_sum(im.s1, w1, sy.lo, sy.hi, sx.lo, sx.hi);
  const double s2 = zncc_rect_sum(im.s2, w1, sy.lo, sy.hi, sx.lo, sx.hi);
  const double wssd = zncc_window_ssd(s1, s2, double(t.h) * double(t.w));
  if (wssd <= im.flat_bound && zncc_window_flat(im, inside, sy, sx)) return 0.0f;
  double num = double(fft_num) * zncc_fft_unscale(im.fft_exp, t.fft_exp);
  if (!inside)
    num += im.centre * zncc_rect_sum(t.tc, (long long)t.w + 1, sy.off, sy.off + sy.hi - sy.lo,
                                     sx.off, sx.off + sx.hi - sx.lo);
  const ZnccTableScale ts = zncc_table_scale(im.fft_exp);
  const double inv_w = zncc_inv_sd_from_table(zncc_inv_sd_table(wssd, ts), ts);
  return float(zncc_from_inverse(num, inv_w, t.ssd_t, zncc_inv_sd(t.ssd_t), eps));
}

}  // namespace tessera::core

// core::zncc_placement for a run of placements along one map row: the same
// operations in the same order, so the same bits (tests/xcorr/test_xcorr.cpp
// compares them over any column range), arranged so that a compiler
// vectorises them: restrict pointers, selects, no branch per placement. The CPU
// backend runs these; the GPU backend calls zncc_placement per thread.
//
// Every rect sum of zncc_placement is (b[c1+1] - a[c1+1]) - (b[c0] - a[c0]) for
// two table rows a and b, and along a map row a and b stay the same: their
// difference is formed once per map row, and each placement's column range is
// one of three segments (zncc_segments).
#pragma once

#include "hd.hpp"
#include "zncc.hpp"

namespace tessera::core {

// The segments of map columns [x0, x1] for a template of width w over an image
// of width W >= w: x <= left_end sticks out at the left (image columns
// [0, x]), x <= mid_end covers w image columns ([x - w + 1, x]), the rest
// sticks out at the right ([x - w + 1, W - 1]).
struct ZnccSegments {
  int left_end, mid_end;
};
TESSERA_HD inline ZnccSegments zncc_segments(int w, int W, int x1) {
  return {x1 < w - 2 ? x1 : w - 2, x1 < W - 1 ? x1 : W - 1};
}

// The window part of zncc_placement for map row y, columns [x0, x1], and a
// template of h x w: ws[x - x0] = zncc_window_ssd of the placement's window.
// Reads s1, s2, H and W of im only. d1, d2: scratch of W + 1 each.
TESSERA_HD inline void zncc_window_row(const ZnccImageTables& im, int h, int w, int y, int x0,
                                       int x1, double* __restrict__ d1, double* __restrict__ d2,
                                       double* __restrict__ ws) {
  const int W = im.W;
  const long long w1 = (long long)W + 1;
  const double area = double(h) * double(w);
  const ZnccSpan sy = zncc_span(y, h, im.H);
  const double* a1 = im.s1 + sy.lo * w1;
  const double* b1 = im.s1 + (sy.hi + 1) * w1;
  const double* a2 = im.s2 + sy.lo * w1;
  const double* b2 = im.s2 + (sy.hi + 1) * w1;
  for (int c = 0; c <= W; ++c) {
    d1[c] = b1[c] - a1[c];
    d2[c] = b2[c] - a2[c];
  }
  const ZnccSegments seg = zncc_segments(w, W, x1);
  int x = x0;
  for (; x <= seg.left_end; ++x)
    ws[x - x0] = zncc_window_ssd(d1[x + 1] - d1[0], d2[x + 1] - d2[0], area);
  for (; x <= seg.mid_end; ++x)
    ws[x - x0] = zncc_window_ssd(d1[x + 1] - d1[x - w + 1], d2[x + 1] - d2[x - w + 1], area);
  for (; x <= x1; ++x)
    ws[x - x0] = zncc_window_ssd(d1[W] - d1[x - w + 1], d2[W] - d2[x - w + 1], area);
}

// The flat-window test of zncc_placement on the row of zncc_window_row: sets
// ws[x - x0] to 0 where it is <= im.flat_bound and the window is flat. That
// makes R exactly 0 in zncc_normalise_row, as zncc_placement returns for a
// flat window. Reads the count tables of im; rare (a scan of ws for a value
// <= flat_bound tells whether a row needs it).
TESSERA_HD inline void zncc_zero_flat_windows(const ZnccImageTables& im, int h, int w, int y,
                                              int x0, int x1, double* ws) {
  const ZnccSpan sy = zncc_span(y, h, im.H);
  for (int x = x0; x <= x1; ++x) {
    if (!(ws[x - x0] <= im.flat_bound)) continue;
    const ZnccSpan sx = zncc_span(x, w, im.W);
    if (zncc_window_flat(im, zncc_full(sy, h) && zncc_full(sx, w), sy, sx)) ws[x - x0] = 0.0;
  }
}

// zncc_inv_sd_table of each of the n window sums of squares of a row (after
// zncc_zero_flat_windows), for an image of transform scale fft_exp: what
// zncc_normalise_row reads.
TESSERA_HD inline void zncc_inv_sd_row(const double* __restrict__ ws, float* __restrict__ inv, int n, int fft_exp) {
  const ZnccTableScale ts = zncc_table_scale(fft_exp);
  for (int i = 0; i < n; ++i) inv[i] = zncc_inv_sd_table(ws[i], ts);
}

// R for map row y, columns [x0, x1], written over the transform's numerators
// in row[x - x0] (scaled as zncc_placement's fft_num), from the window row inv
// (zncc_window_row, then zncc_zero_flat_windows, then zncc_inv_sd_row) and the
// template's padding correction (core::zncc_from_inverse). eps >= 0. Reads H,
// W, centre and fft_exp of im only.
// tr: scratch of t.w + 1; cor: scratch of x1 - x0 + 1.
TESSERA_HD inline void zncc_normalise_row(const ZnccImageTables& im, const ZnccTemplateStats& t,
                                          int y, int x0, int x1, double eps,
                                          const float* __restrict__ ws, double* __restrict__ tr,
                                          double* __restrict__ cor, float* __restrict__ row) {
  const int W = im.W, w = t.w;
  const double centre = im.centre, ssd_t = t.ssd_t, inv_t = zncc_inv_sd(t.ssd_t);
  const ZnccSpan sy = zncc_span(y, t.h, im.H);
  // Row differences of the template rows under the window, [sy.off, sy.off + sy.hi - sy.lo].
  const long long tw1 = (long long)w + 1;
  const double* ta = t.tc + sy.off * tw1;
  const double* tb = t.tc + (sy.off + sy.hi - sy.lo + 1) * tw1;
  for (int c = 0; c <= w; ++c) tr[c] = tb[c] - ta[c];
  const ZnccSegments seg = zncc_segments(w, W, x1);
  // The template columns under the window run backwards in x on the left and
  // right segments: their sums are gathered first, so the main loops vectorise.
  for (int x = x0; x <= seg.left_end; ++x) cor[x - x0] = tr[w] - tr[w - 1 - x];
  for (int x = x0 > seg.mid_end ? x0 : seg.mid_end + 1; x <= x1; ++x)
    cor[x - x0] = tr[W - x + w - 1] - tr[0];
  const double unscale = zncc_fft_unscale(im.fft_exp, t.fft_exp);
  const ZnccTableScale ts = zncc_table_scale(im.fft_exp);
  auto r = [ssd_t, inv_t, eps, ts](double num, float inv_w) {
    return float(zncc_from_inverse(num, zncc_inv_sd_from_table(inv_w, ts), ssd_t, inv_t, eps));
  };
  int x = x0;
  for (; x <= seg.left_end; ++x)
    row[x - x0] = r(double(row[x - x0]) * unscale + centre * cor[x - x0], ws[x - x0]);
  if (zncc_full(sy, t.h)) {
    for (; x <= seg.mid_end; ++x) row[x - x0] = r(double(row[x - x0]) * unscale, ws[x - x0]);  // inside
  } else {
    const double c_all = tr[w] - tr[0];  // every template column
    for (; x <= seg.mid_end; ++x) row[x - x0] = r(double(row[x - x0]) * unscale + centre * c_all, ws[x - x0]);
  }
  for (; x <= x1; ++x) row[x - x0] = r(double(row[x - x0]) * unscale + centre * cor[x - x0], ws[x - x0]);
}

}  // namespace tessera::core

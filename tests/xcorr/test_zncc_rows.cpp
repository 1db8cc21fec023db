// The ZNCC formulas of src/core (core/zncc.hpp, core/zncc_rows.hpp) against
// their definition and against each other: the CPU's row passes give the bits
// of the per-placement function the GPU calls, on any column range.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/zncc.hpp"
#include "core/zncc_rows.hpp"
#include "xcorr/xcorr.hpp"
#include "xcorr_test_util.hpp"

using namespace tessera::xcorr;
using namespace tessera::xcorr::test;

TEST(Zncc, CoreFormulaMatchesDefinition) {
  using namespace tessera::core;
  // Window [1, 2, 3, 4], template [2, 4, 6, 9]: direct Pearson correlation.
  const double win[4] = {1, 2, 3, 4}, tp[4] = {2, 4, 6, 9};
  double s1 = 0, s2 = 0, c = 0, tb = 0;
  for (int i = 0; i < 4; ++i) s1 += win[i], s2 += win[i] * win[i], c += win[i] * tp[i], tb += tp[i];
  tb /= 4;
  double ssd = 0, num = 0, wb = s1 / 4, dw = 0;
  for (int i = 0; i < 4; ++i)
    ssd += (tp[i] - tb) * (tp[i] - tb), num += (win[i] - wb) * (tp[i] - tb), dw += (win[i] - wb) * (win[i] - wb);
  EXPECT_NEAR(zncc_from_sums(c, s1, s2, 4, tb, ssd, 1e-6), num / std::sqrt(dw * ssd), 1e-14);
  EXPECT_EQ(zncc_from_sums(12, 4, 4, 4, 3, 5, 1e-6), 0.0);  // flat window [1,1,1,1]
  EXPECT_EQ(zncc_window_ssd(1.0, 0.2, 4.0), 0.0);           // clamped, never negative
  const ZnccSpan s = zncc_span(1, 4, 10);                   // covers image [-2, 1]
  EXPECT_EQ(s.lo, 0); EXPECT_EQ(s.hi, 1); EXPECT_EQ(s.off, 2);
}

// The CPU's vectorised row passes do the operations of core::zncc_placement (the
// function the GPU kernel calls per placement) in the same order: same bits, on
// shapes that exercise every column segment, flat windows and both kinds of
// padding correction.
TEST(Xcorr, RowPassesGiveTheBitsOfTheSharedPlacementFunction) {
  std::mt19937 rng(23);
  struct Case { int H, W, h, w; bool flat_patch; };
  for (const Case& c : {Case{31, 27, 7, 5, false}, Case{16, 40, 16, 3, false},
                        Case{25, 25, 1, 1, false}, Case{30, 33, 6, 8, true},
                        Case{12, 50, 4, 50, false}}) {
    Img im = random_img(c.H, c.W, rng, 50.f, 60.f);
    if (c.flat_patch)  // a flat block and a zero block: R exactly 0 on both
      for (int y = 0; y < 12; ++y)
        for (int x = 0; x < 14; ++x) {
          im.at(y, x) = 0.f;
          im.at(c.H - 1 - y, c.W - 1 - x) = 55.f;
        }
    const Img t = random_img(c.h, c.w, rng);
    PreparedImage pi(im.view(), false);
    PreparedTemplate pt(t.view(), false);
    Workspace ws;
    const std::vector<float> num = numerator_map(pi, pt, ws);
    std::vector<float> map;
    correlate(pi, pt, Options{}, ws, &map);
    const auto tables = zncc_tables(pi);
    const auto stats = zncc_stats(pt);
    const int mh = c.H + c.h - 1, mw = c.W + c.w - 1;
    ASSERT_EQ(map.size(), std::size_t(mh) * mw);
    int mismatches = 0, zeros = 0;
    for (int y = 0; y < mh; ++y)
      for (int x = 0; x < mw; ++x) {
        const std::size_t i = std::size_t(y) * mw + x;
        const float ref = tessera::core::zncc_placement(tables, stats, y, x, num[i], 1e-6);
        if (std::memcmp(&ref, &map[i], sizeof(float)) != 0) ++mismatches;
        zeros += map[i] == 0.0f;
      }
    EXPECT_EQ(mismatches, 0) << c.H << "x" << c.W << " / " << c.h << "x" << c.w;
    if (c.flat_patch) {
      EXPECT_GT(zeros, 20);
    }
  }
}

// core/zncc_rows.hpp, the row passes the CPU backend runs, against
// core::zncc_placement, the function the GPU kernel calls per placement: same
// bits on every column range [x0, x1] of every row (ranges that begin and end
// in each column segment), with arbitrary numerators, flat and zero windows, a
// template as tall or as wide as the image, a flat template and an eps that
// cuts a share of the placements.
TEST(Zncc, RowPassesGiveThePlacementFunctionsBitsOnAnyColumnRange) {
  using namespace tessera::core;
  std::mt19937 rng(41);
  struct Case { int H, W, h, w; float lo, hi; bool flat_patch, flat_template; double eps; };
  for (const Case& c : {Case{30, 34, 5, 7, 1000.f, 5000.f, true, false, 1e-6},
                        Case{12, 9, 12, 9, 50.f, 60.f, false, false, 1e-6},
                        Case{14, 17, 1, 3, 50.f, 60.f, false, false, 1e-6},
                        Case{15, 11, 4, 1, 50.f, 60.f, false, false, 1e-6},
                        Case{10, 13, 4, 13, 50.f, 60.f, false, false, 1e-6},
                        Case{16, 21, 4, 3, 50.f, 60.f, false, true, 1e-6},
                        Case{18, 20, 6, 5, 0.f, 1.f, false, false, 6.0}}) {
    const std::string what = std::to_string(c.H) + "x" + std::to_string(c.W) + " / " +
                             std::to_string(c.h) + "x" + std::to_string(c.w);
    Img im = random_img(c.H, c.W, rng, c.lo, c.hi);
    if (c.flat_patch)  // a zero block, and a flat block whose rounded variance is not 0
      for (int y = 0; y < 14; ++y)
        for (int x = 0; x < 18; ++x) {
          if (y < 7 && x < 9) im.at(y, x) = 0.f;
          im.at(c.H - 1 - y, c.W - 1 - x) = 4321.123f;
        }
    const Img t = c.flat_template ? Img{c.h, c.w, std::vector<float>(std::size_t(c.h) * c.w, 3.f)}
                                  : random_img(c.h, c.w, rng);
    const PreparedImage pi(im.view(), false);
    const PreparedTemplate pt(t.view(), false);
    const ZnccImageTables tables = zncc_tables(pi);
    const ZnccTemplateStats stats = zncc_stats(pt);
    const int mh = c.H + c.h - 1, mw = c.W + c.w - 1;
    std::uniform_real_distribution<float> numerator(-40.f, 40.f);
    std::vector<double> d1(c.W + 1), d2(c.W + 1), tr(c.w + 1), ws(mw), cor(mw);  // scratch
    std::vector<float> inv(mw);
    std::vector<float> num(mw), row(mw);
    int mismatches = 0, zeros = 0, values = 0, flat_rounding = 0;
    for (int y = 0; y < mh; ++y)
      for (int x0 = 0; x0 < mw; x0 += 2)
        for (int x1 = x0; x1 < mw; x1 += 3) {
          for (float& v : num) v = numerator(rng);
          zncc_window_row(tables, c.h, c.w, y, x0, x1, d1.data(), d2.data(), ws.data());
          const std::vector<double> rounded = ws;
          zncc_zero_flat_windows(tables, c.h, c.w, y, x0, x1, ws.data());
          for (int i = 0; i <= x1 - x0; ++i) flat_rounding += ws[std::size_t(i)] != rounded[std::size_t(i)];
          zncc_inv_sd_row(ws.data(), inv.data(), x1 - x0 + 1, tables.fft_exp);
          row = num;
          zncc_normalise_row(tables, stats, y, x0, x1, c.eps, inv.data(), tr.data(), cor.data(), row.data());
          for (int x = x0; x <= x1; ++x) {
            const float got = row[std::size_t(x - x0)];
            const float ref = zncc_placement(tables, stats, y, x, num[std::size_t(x - x0)], c.eps);
            mismatches += std::memcmp(&ref, &got, sizeof ref) != 0;
            zeros += got == 0.0f;
            ++values;
          }
        }
    EXPECT_EQ(mismatches, 0) << what;
    if (c.flat_patch) {
      EXPECT_GT(flat_rounding, 0) << what << ": no flat window with a rounded variance > 0";
    }
    if (c.flat_patch || c.flat_template || c.eps > 1) {
      EXPECT_GT(zeros, values / 50) << what;
    }
    if (!c.flat_template) {
      EXPECT_LT(zeros, values * 9 / 10) << what;
    }
  }
}

// A smooth image sampled at a sub-pixel shift: the parabola puts the peak
// within a tenth of a pixel of the true position; a template cut from a random
// image stands far above any other placement; a periodic image has a second
// peak as high as the first.

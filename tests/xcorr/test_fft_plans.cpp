// FFT plans from shared wisdom (xcorr/fft_plans.hpp): with
// Options::fft_from_wisdom a process plans from imported wisdom alone. Its own
// test program: FFTW's wisdom is process-wide.
#include <fftw3.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "xcorr/fft_plans.hpp"
#include "xcorr/xcorr.hpp"
#include "xcorr_test_util.hpp"

namespace tessera::xcorr {
namespace {

TEST(FftPlans, PlansFromWisdomOnlyWhenAsked) {
  EXPECT_EQ(fft_planner_flags(false), unsigned(FFTW_ESTIMATE));
  EXPECT_EQ(fft_planner_flags(true), unsigned(FFTW_MEASURE | FFTW_WISDOM_ONLY));
  const std::pair<int, int> size = fft_size(40, 50, 9, 11, Options{});
  const std::pair<int, int> sizes[] = {size}, other[] = {{size.first + 2, size.second + 2}};
  EXPECT_FALSE(import_fft_wisdom({"(not wisdom", ""}, sizes, false).empty());

  const FftWisdom w = measure_fft_wisdom(sizes, /*with_double=*/true, {});
  EXPECT_FALSE(w.single.empty());
  EXPECT_FALSE(w.dbl.empty());
  EXPECT_TRUE(fft_wisdom_covers(w, sizes, true));
  EXPECT_FALSE(fft_wisdom_covers(w, other, false));
  EXPECT_FALSE(fft_wisdom_covers({w.single, ""}, sizes, true)) << "no double plans in it";
  EXPECT_THROW(fft_wisdom_covers({"(garbage", ""}, sizes, false), std::invalid_argument);
  EXPECT_FALSE(import_fft_wisdom(w, other, false).empty());
  ASSERT_EQ(import_fft_wisdom(w, sizes, true), "");

  std::mt19937 rng(3);
  const test::Img im = test::random_img(40, 50, rng), t = test::cut(im, 7, 12, 9, 11);
  Options from_wisdom;
  from_wisdom.fft_from_wisdom = true;
  const Peak p = xcorr_peak(im.view(), t.view(), from_wisdom), q = xcorr_peak(im.view(), t.view());
  EXPECT_EQ(p.y, 7 + 9 - 1);
  EXPECT_EQ(p.x, 12 + 11 - 1);
  EXPECT_EQ(q.y, p.y);
  EXPECT_EQ(q.x, p.x);
  EXPECT_NEAR(p.value, q.value, 1e-5);
  // A size the wisdom does not hold cannot be planned from it; FFTW_ESTIMATE
  // plans of the same process are not affected.
  const test::Img big = test::random_img(60, 70, rng);
  EXPECT_THROW(xcorr_peak(big.view(), t.view(), from_wisdom), std::runtime_error);
  EXPECT_NO_THROW(xcorr_peak(big.view(), t.view()));
}

// The pruned forward transform (forward(): the row transforms of the blocks
// that hold a nonzero row, then the columns) against FFTW's own 2-D r2c of
// the same array, in float and double: padded sizes with rows a multiple of
// the block or not, nonzero rows from 1 to all of them (the 2-D fallback),
// and sizes below one block. Equal within the transforms' rounding (in the
// cases measured the bits are the same); a skipped or misplaced row is off by
// the data's size.
template <class R, class C, class Plan, class Plans>
void check_forward(int py, int px, int rows, std::mt19937& rng, Plan (*plan_2d)(int, int, R*, C*, unsigned),
                   void (*exec_2d)(Plan, R*, C*), R* (*alloc_r)(std::size_t), C* (*alloc_c)(std::size_t),
                   void (*free_)(void*), void (*destroy)(Plan)) {
  const std::size_t nr = std::size_t(py) * px, nc = std::size_t(py) * (px / 2 + 1);
  R *in = alloc_r(nr), *keep = alloc_r(nr);
  C *want = alloc_c(nc), *got = alloc_c(nc);
  Plan full = plan_2d(py, px, in, want, FFTW_ESTIMATE);
  Plans f = plan_forward(py, px, in, got, FFTW_ESTIMATE);
  ASSERT_TRUE(full);
  EXPECT_EQ(f.rows != nullptr, py >= kForwardRowBlock);
  std::uniform_real_distribution<double> u(-1, 1);
  for (std::size_t i = 0; i < nr; ++i) keep[i] = i < std::size_t(rows) * px ? R(u(rng)) : R(0);
  std::copy(keep, keep + nr, in);
  exec_2d(full, in, want);
  std::copy(keep, keep + nr, in);
  // The rows forward() does not read may hold anything.
  for (std::size_t i = std::size_t(forward_rows_read(py, rows)) * px; i < nr; ++i) in[i] = R(1e30);
  std::fill(reinterpret_cast<R*>(got), reinterpret_cast<R*>(got + nc), R(7));
  forward(f, full, py, px, rows, in, got);
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < nc; ++i)
    for (int c = 0; c < 2; ++c) {
      worst = std::max(worst, std::fabs(double(got[i][c]) - double(want[i][c])));
      scale = std::max(scale, std::fabs(double(want[i][c])));
    }
  const double tol = (sizeof(R) == 4 ? 1e-5 : 1e-13) * scale;
  EXPECT_LE(worst, tol) << py << "x" << px << ", " << rows << " rows";
  destroy_forward(f);
  destroy(full);
  free_(in);
  free_(keep);
  free_(want);
  free_(got);
}

TEST(FftPlans, PrunedForwardIsTheTwoDimensionalTransform) {
  std::mt19937 rng(11);
  const int shapes[][3] = {{64, 48, 20},  {64, 48, 16}, {64, 48, 1},   {64, 48, 64}, {60, 50, 45},
                           {60, 50, 49},  {60, 50, 60}, {10, 12, 4},   {40, 50, 17}, {80, 36, 33}};
  for (const auto& s : shapes) {
    check_forward<float, fftwf_complex, fftwf_plan, ForwardPlansF>(
        s[0], s[1], s[2], rng, fftwf_plan_dft_r2c_2d, fftwf_execute_dft_r2c, fftwf_alloc_real,
        fftwf_alloc_complex, fftwf_free, fftwf_destroy_plan);
    check_forward<double, fftw_complex, fftw_plan, ForwardPlansD>(
        s[0], s[1], s[2], rng, fftw_plan_dft_r2c_2d, fftw_execute_dft_r2c, fftw_alloc_real, fftw_alloc_complex,
        fftw_free, fftw_destroy_plan);
  }
  EXPECT_EQ(forward_rows_read(64, 20), 32);
  EXPECT_EQ(forward_rows_read(60, 49), 60);
  EXPECT_EQ(forward_rows_read(10, 4), 10);
}

// The inverse for a band of rows (inverse_rows: the column transforms, then
// only the row blocks that hold the band) against FFTW's own 2-D c2r of the
// same spectrum (the r2c of random data), float: bands inside, at either
// edge, of one row, and ones so wide that the 2-D plan does it.
TEST(FftPlans, InverseForABandOfRowsIsTheTwoDimensionalTransform) {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(-1, 1);
  const int cases[][4] = {{64, 48, 20, 40}, {64, 48, 0, 5},  {64, 48, 50, 63}, {64, 48, 33, 33},
                          {60, 50, 10, 40}, {60, 50, 0, 59}, {80, 36, 17, 70}, {10, 12, 2, 5}};
  for (const auto& c : cases) {
    const int py = c[0], px = c[1], y0 = c[2], y1 = c[3];
    const std::size_t nr = std::size_t(py) * px, nc = std::size_t(py) * (px / 2 + 1);
    float *data = fftwf_alloc_real(nr), *want = fftwf_alloc_real(nr), *got = fftwf_alloc_real(nr);
    fftwf_complex *spec = fftwf_alloc_complex(nc), *work = fftwf_alloc_complex(nc);
    const fftwf_plan fwd = fftwf_plan_dft_r2c_2d(py, px, data, spec, FFTW_ESTIMATE);
    const fftwf_plan full = fftwf_plan_dft_c2r_2d(py, px, work, want, FFTW_ESTIMATE);
    InversePlansF inv = plan_inverse(py, px, work, got, FFTW_ESTIMATE);
    EXPECT_EQ(inv.rows != nullptr, py >= kForwardRowBlock);
    for (std::size_t i = 0; i < nr; ++i) data[i] = u(rng);
    fftwf_execute(fwd);
    std::copy(spec[0], spec[0] + 2 * nc, work[0]);
    fftwf_execute_dft_c2r(full, work, want);
    std::copy(spec[0], spec[0] + 2 * nc, work[0]);
    std::fill(got, got + nr, 1e30f);
    inverse_rows(inv, full, py, px, y0, y1, work, got);
    double worst = 0, scale = 0;
    for (int y = y0; y <= y1; ++y)
      for (int x = 0; x < px; ++x) {
        const std::size_t i = std::size_t(y) * px + x;
        worst = std::max(worst, std::fabs(double(got[i]) - double(want[i])));
        scale = std::max(scale, std::fabs(double(want[i])));
      }
    EXPECT_LE(worst, 1e-5 * scale) << py << "x" << px << " rows " << y0 << ".." << y1;
    // The result is the data times py * px (FFTW's unnormalised pair).
    EXPECT_NEAR(got[std::size_t(y0) * px] / double(nr), data[std::size_t(y0) * px], 1e-5);
    destroy_inverse(inv);
    fftwf_destroy_plan(fwd);
    fftwf_destroy_plan(full);
    for (void* p : {static_cast<void*>(data), static_cast<void*>(want), static_cast<void*>(got),
                    static_cast<void*>(spec), static_cast<void*>(work)})
      fftwf_free(p);
  }
}

}  // namespace
}  // namespace tessera::xcorr

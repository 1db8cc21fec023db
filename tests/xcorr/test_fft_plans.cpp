// FFT plans from shared wisdom (xcorr/fft_plans.hpp): with
// Options::fft_from_wisdom a process plans from imported wisdom alone. Its own
// test program: FFTW's wisdom is process-wide.
#include <fftw3.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tessera::xcorr

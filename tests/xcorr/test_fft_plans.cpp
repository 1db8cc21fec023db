// FFT plans from shared wisdom (xcorr/fft_plans.hpp): a process that imports
// wisdom plans from it alone. Its own test program: the planner flags are
// process-wide and would change the plans of every later test.
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

TEST(FftPlans, WisdomOnlyAfterUse) {
  EXPECT_EQ(fft_planner_flags(), unsigned(FFTW_ESTIMATE));
  const std::pair<int, int> size = fft_size(40, 50, 9, 11, Options{});
  const std::pair<int, int> sizes[] = {size}, other[] = {{size.first + 2, size.second + 2}};
  EXPECT_FALSE(use_fft_wisdom({"(not wisdom", ""}, sizes, false).empty());
  EXPECT_EQ(fft_planner_flags(), unsigned(FFTW_ESTIMATE)) << "a failed use changed the planner";

  const FftWisdom w = measure_fft_wisdom(sizes, /*with_double=*/true, {});
  EXPECT_FALSE(w.single.empty());
  EXPECT_FALSE(w.dbl.empty());
  EXPECT_TRUE(fft_wisdom_covers(w, sizes, true));
  EXPECT_FALSE(fft_wisdom_covers(w, other, false));
  EXPECT_FALSE(fft_wisdom_covers({w.single, ""}, sizes, true)) << "no double plans in it";
  EXPECT_THROW(fft_wisdom_covers({"(garbage", ""}, sizes, false), std::invalid_argument);
  EXPECT_FALSE(use_fft_wisdom(w, other, false).empty());

  ASSERT_EQ(use_fft_wisdom(w, sizes, true), "");
  EXPECT_EQ(fft_planner_flags(), unsigned(FFTW_MEASURE | FFTW_WISDOM_ONLY));
  std::mt19937 rng(3);
  const test::Img im = test::random_img(40, 50, rng), t = test::cut(im, 7, 12, 9, 11);
  const Peak p = xcorr_peak(im.view(), t.view());  // planned from the wisdom
  EXPECT_EQ(p.y, 7 + 9 - 1);
  EXPECT_EQ(p.x, 12 + 11 - 1);
  // A size the wisdom does not hold cannot be planned any more.
  const test::Img big = test::random_img(60, 70, rng);
  EXPECT_THROW(xcorr_peak(big.view(), t.view()), std::runtime_error);
}

}  // namespace
}  // namespace tessera::xcorr

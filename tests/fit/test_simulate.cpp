// The simulator behind `tessera simulate`: NV physics of the truth, the noise it
// claims, bad pixels, the spread of T1 and Rabi parameters, determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "fit/simulate.hpp"

using namespace tessera::fit;

namespace {
float truth_at(const SimCube& c, int j, int pix) { return c.truth[size_t(j) * c.ny * c.nx + pix]; }
}  // namespace

TEST(Simulate, OdmrEightPeaksFollowNvPhysics) {
  SimOptions o;
  o.ny = 12;
  o.nx = 20;
  const SimCube c = simulate("odmr", o);
  ASSERT_EQ(c.spec.n_params(), 25);
  const int npix = c.ny * c.nx;
  double outer_min = 1e9, outer_max = -1e9;
  int good = 0;
  for (int pix = 0; pix < npix; ++pix) {
    if (std::isnan(truth_at(c, 0, pix))) continue;
    ++good;
    for (int k = 0; k < 4; ++k) {
      const double lo = truth_at(c, 1 + 3 * k, pix), hi = truth_at(c, 1 + 3 * (7 - k), pix);
      // Each pair is symmetric about D, split by 2 gamma B_nv.
      EXPECT_NEAR(lo + hi, 2 * nv_zero_field_mhz, 1e-3);
      EXPECT_NEAR((hi - lo) / (2 * nv_gamma_mhz_per_mt), c.bnv[size_t(k) * npix + pix], 1e-4);
    }
    for (int k = 0; k + 1 < 8; ++k) EXPECT_LT(truth_at(c, 1 + 3 * k, pix), truth_at(c, 4 + 3 * k, pix));
    outer_min = std::min(outer_min, double(truth_at(c, 1, pix)));
    outer_max = std::max(outer_max, double(truth_at(c, 1, pix)));
  }
  EXPECT_GT(good, npix * 9 / 10);
  // The outer peak moves across the image by about gradient_mhz (plus the dipole).
  EXPECT_GT(outer_max - outer_min, 0.7 * o.gradient_mhz);
  EXPECT_LT(outer_max - outer_min, 2.5 * o.gradient_mhz);
}

TEST(Simulate, NoiseAndBadPixelsAreAsAdvertised) {
  SimOptions o;
  o.ny = 40;
  o.nx = 50;
  o.n_peaks = 2;
  o.bad_fraction = 0.01;
  const SimCube c = simulate("odmr", o);
  const int npix = c.ny * c.nx, n = c.n_sweep();
  const std::vector<double> x(c.sweep.begin(), c.sweep.end());
  double ss = 0;
  long count = 0;
  int dead = 0, saturated = 0;
  for (int pix = 0; pix < npix; ++pix) {
    bool all_zero = true, all_one = true;
    for (int i = 0; i < n; ++i) {
      all_zero &= c.data[size_t(i) * npix + pix] == 0.0f;
      all_one &= c.data[size_t(i) * npix + pix] == 1.0f;
    }
    dead += all_zero;
    saturated += all_one;
    if (std::isnan(truth_at(c, 0, pix))) {
      EXPECT_TRUE(all_zero || all_one);
      continue;
    }
    std::vector<double> t;
    for (int j = 0; j < c.spec.n_params(); ++j) t.push_back(truth_at(c, j, pix));
    const auto f = model_values(c.spec, t, x);
    for (int i = 0; i < n; ++i) {
      ss += std::pow(c.data[size_t(i) * npix + pix] - f[i], 2);
      ++count;
    }
  }
  EXPECT_NEAR(std::sqrt(ss / count), o.noise, 0.02 * o.noise);
  const double expected = o.bad_fraction * npix, spread = 4 * std::sqrt(expected);  // binomial
  EXPECT_NEAR(dead, expected, spread);
  EXPECT_NEAR(saturated, expected, spread);
}

TEST(Simulate, DecayParametersSpanTheRequestedRatios) {
  SimOptions o;
  o.ny = 10;
  o.nx = 10;
  o.bad_fraction = 0;
  const SimCube t1 = simulate("t1", o);
  const SimCube rabi = simulate("rabi", o);
  auto ratio = [](const SimCube& c, int j) {
    const int npix = c.ny * c.nx;
    const auto b = c.truth.begin() + size_t(j) * npix;
    return *std::max_element(b, b + npix) / *std::min_element(b, b + npix);
  };
  EXPECT_NEAR(ratio(t1, 2), o.t1_ratio, 1e-3 * o.t1_ratio);
  EXPECT_NEAR(ratio(rabi, 3), o.freq_ratio, 1e-3 * o.freq_ratio);
}

TEST(Simulate, PhotonFramesAndDeterminism) {
  SimOptions o;
  o.ny = 6;
  o.nx = 7;
  o.n_peaks = 2;
  o.photons = 1e4;
  o.bad_fraction = 0;
  const SimCube a = simulate("odmr", o), b = simulate("odmr", o);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.sig, b.sig);
  double mean_ref = 0;
  for (float r : a.ref) mean_ref += r;
  mean_ref /= a.ref.size();
  EXPECT_NEAR(mean_ref, o.photons, 5 * std::sqrt(o.photons / a.ref.size()) + 1);
  for (size_t i = 0; i < a.data.size(); ++i) EXPECT_FLOAT_EQ(a.data[i], a.sig[i] / a.ref[i]);
  o.seed = 2;
  EXPECT_NE(simulate("odmr", o).data, a.data);
}

TEST(Simulate, BadOptionsAreRefused) {
  SimOptions o;
  EXPECT_THROW(simulate("esr", o), std::invalid_argument);
  o.n_peaks = 4;
  EXPECT_THROW(simulate("odmr", o), std::invalid_argument);
  o = {};
  o.nx = 0;
  EXPECT_THROW(simulate("t1", o), std::invalid_argument);
}

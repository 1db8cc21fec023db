// The CPU batch engine: recovery of noise-free spectra for every model,
// bounds, fixed parameters, per-fit states for bad spectra, validation
// messages, and bit-identical results for any thread count and batch split.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "fit/batch.hpp"
#include "spectra.hpp"

using namespace tessera;
using namespace tessera::test;
using fit::FitState;

namespace {

struct Case {
  fit::ModelSpec spec;
  std::vector<float> x;
  std::vector<double> truth;
  std::vector<double> start;
};

fit::FitResults fit_one(const Case& c, const fit::FitOptions& o = {}) {
  std::vector<float> y;
  std::mt19937_64 rng(1);
  append_spectrum(c.spec, c.truth, c.x, 0.0, rng, y);
  std::vector<float> start(c.start.begin(), c.start.end());
  fit::FitBatch b{c.x, y.data(), nullptr, nullptr, start.data(), 1};
  return fit::fit_batch(c.spec, b, o);
}

// Noise-free data, start a linewidth or more away: every parameter back to
// 1e-5 relative.
void expect_recovered(const Case& c) {
  const auto r = fit_one(c);
  ASSERT_EQ(r.state[0], int(FitState::converged)) << c.spec.model_name();
  const auto names = c.spec.param_names();
  for (size_t j = 0; j < c.truth.size(); ++j)
    EXPECT_NEAR(r.params[j], c.truth[j], 1e-5 * std::abs(c.truth[j]))
        << c.spec.model_name() << " " << names[j];
}

Case lorentzian_case(int n_peaks, bool linear, double shift_in_widths) {
  Case c;
  c.x = linspace(2700, 3040, 241);
  c.spec = fit::make_model_spec("lorentzian", n_peaks, linear ? "linear" : "constant", c.x);
  const double spacing = n_peaks == 1 ? 0 : 300.0 / (n_peaks - 1);
  c.truth = odmr_truth(n_peaks, 2870, spacing);
  if (linear) c.truth.insert(c.truth.begin() + 1, 2e-4);
  c.start = c.truth;
  const int first = linear ? 2 : 1;
  for (int k = 0; k < n_peaks; ++k) {
    c.start[first + 3 * k] += shift_in_widths * 9.0 * (k % 2 ? -1 : 1);  // pos
    c.start[first + 3 * k + 1] *= 1.4;                                    // fwhm
    c.start[first + 3 * k + 2] *= 0.6;                                    // amp
  }
  c.start[0] = 0.995;
  return c;
}

}  // namespace

TEST(FitBatchRecovery, LorentzianOnePeak) { expect_recovered(lorentzian_case(1, false, 2.0)); }
TEST(FitBatchRecovery, LorentzianTwoPeaksLinear) { expect_recovered(lorentzian_case(2, true, 1.5)); }
TEST(FitBatchRecovery, LorentzianEightPeaks) { expect_recovered(lorentzian_case(8, false, 1.0)); }

TEST(FitBatchRecovery, GaussianTwoPeaks) {
  Case c = lorentzian_case(2, false, 1.0);
  c.spec = fit::make_model_spec("gaussian", 2, "constant", c.x);
  expect_recovered(c);
}

TEST(FitBatchRecovery, StretchedExponential) {
  Case c;
  c.x = linspace(0, 5000, 80);
  c.spec = fit::make_model_spec("stretched_exp", 0, "constant", c.x);
  c.truth = {0.2, 0.8, 900.0, 0.7};
  c.start = {0.25, 0.6, 2000.0, 1.0};
  expect_recovered(c);
}

TEST(FitBatchRecovery, DampedCosine) {
  Case c;
  c.x = linspace(0, 2000, 200);
  c.spec = fit::make_model_spec("damped_cosine", 0, "constant", c.x);
  c.truth = {0.5, 0.3, 800.0, 0.0125, 0.4};
  c.start = {0.45, 0.2, 500.0, 0.012, 0.0};
  expect_recovered(c);
}

TEST(FitBatchBounds, ActiveBoundHoldsExactly) {
  Case c = lorentzian_case(1, false, 0.5);
  fit::FitOptions o;
  o.constraints.resize(4);
  o.constraints[2].lo = 2.0;
  o.constraints[2].hi = 7.0;  // true fwhm is 9
  const auto r = fit_one(c, o);
  EXPECT_EQ(r.state[0], int(FitState::converged));
  EXPECT_EQ(r.params[2], 7.0f);
  // The constrained optimum is the fit with the width fixed at the bound.
  fit::FitOptions fixed;
  fixed.constraints.resize(4);
  fixed.constraints[2].fixed = true;
  Case cf = c;
  cf.start[2] = 7.0;
  const auto rf = fit_one(cf, fixed);
  ASSERT_EQ(rf.state[0], int(FitState::converged));
  for (int j : {0, 1, 3}) EXPECT_NEAR(r.params[j], rf.params[j], 1e-5 * std::abs(rf.params[j])) << j;
}

TEST(FitBatchBounds, EveryParameterStaysInside) {
  Case c = lorentzian_case(2, false, 1.0);
  fit::FitOptions o;
  o.constraints.resize(7);
  const double lo[7] = {0.99, 2700, 5, -0.02, 2700, 5, -0.02};
  const double hi[7] = {1.01, 2870, 20, 0, 3040, 20, 0};
  for (int j = 0; j < 7; ++j) o.constraints[j] = {false, lo[j], hi[j]};
  std::vector<float> y;
  std::vector<float> start;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  const int n = 200;
  for (int i = 0; i < n; ++i) {
    append_spectrum(c.spec, c.truth, c.x, 5e-3, rng, y);
    for (int j = 0; j < 7; ++j) start.push_back(float(c.truth[j] * (1 + 0.3 * u(rng) * (j % 3 != 1))));
  }
  fit::FitBatch b{c.x, y.data(), nullptr, nullptr, start.data(), n};
  const auto r = fit::fit_batch(c.spec, b, o);
  for (int i = 0; i < n; ++i) {
    if (r.state[i] > int(FitState::iteration_limit)) continue;
    for (int j = 0; j < 7; ++j) {
      EXPECT_GE(r.params[i * 7 + j], float(lo[j]));
      EXPECT_LE(r.params[i * 7 + j], float(hi[j]));
    }
  }
}

TEST(FitBatchFixed, FixedParameterKeepsItsValue) {
  Case c = lorentzian_case(2, false, 1.0);
  c.start[0] = 1.0;  // the true offset, fixed
  fit::FitOptions o;
  o.constraints.resize(7);
  o.constraints[0].fixed = true;
  const auto r = fit_one(c, o);
  ASSERT_EQ(r.state[0], int(FitState::converged));
  EXPECT_EQ(r.params[0], 1.0f);
  EXPECT_EQ(r.sigma[0], 0.0f);
  for (int j = 1; j < 7; ++j) EXPECT_NEAR(r.params[j], c.truth[j], 1e-5 * std::abs(c.truth[j]));
}

TEST(FitBatchStates, BadSpectraGetTheirStateAndNaN) {
  Case c = lorentzian_case(1, false, 0.5);
  std::vector<float> y, w;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 6; ++i) append_spectrum(c.spec, c.truth, c.x, 1e-3, rng, y);
  const int n = int(c.x.size());
  w.assign(y.size(), 1.0f);
  y[1 * n + 17] = std::nanf("");
  y[2 * n + 0] = INFINITY;
  w[3 * n + 5] = std::nanf("");
  std::vector<std::uint8_t> mask{0, 0, 0, 0, 1, 0};
  std::vector<float> start;
  for (int i = 0; i < 6; ++i) start.insert(start.end(), c.start.begin(), c.start.end());
  start[5 * 4 + 2] = std::nanf("");  // pixel 5: bad start
  fit::FitBatch b{c.x, y.data(), w.data(), mask.data(), start.data(), 6};
  const auto r = fit::fit_batch(c.spec, b, {});
  const int want[6] = {0, 3, 3, 3, 4, 5};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(r.state[i], want[i]) << "pixel " << i;
    for (int j = 0; j < 4; ++j) {
      EXPECT_EQ(std::isnan(r.params[i * 4 + j]), i != 0) << "pixel " << i;
      EXPECT_EQ(std::isnan(r.sigma[i * 4 + j]), i != 0) << "pixel " << i;
    }
  }
}

TEST(FitBatchStates, AmplitudeZeroIsSingular) {
  Case c = lorentzian_case(1, false, 0.5);
  c.start[3] = 0.0;  // no dip: position and width have no effect
  const auto r = fit_one(c);
  EXPECT_EQ(r.state[0], int(FitState::singular));
  EXPECT_TRUE(std::isnan(r.params[1]));
}

TEST(FitBatchStates, IterationLimitKeepsLastParameters) {
  Case c = lorentzian_case(2, false, 1.5);
  fit::FitOptions o;
  o.max_iter = 2;
  const auto r = fit_one(c, o);
  EXPECT_EQ(r.state[0], int(FitState::iteration_limit));
  EXPECT_EQ(r.iterations[0], 2);
  for (int j = 0; j < 7; ++j) EXPECT_TRUE(std::isfinite(r.params[j]));
}

TEST(FitBatchValidation, ClearMessages) {
  Case c = lorentzian_case(2, false, 1.0);
  auto msg = [&](fit::FitOptions o, int n_points) { return o.validate(c.spec, n_points); };
  fit::FitOptions o;
  EXPECT_EQ(msg(o, 241), "");
  EXPECT_EQ(msg(o, 6), "the sweep has 6 points, fewer than the 7 free parameters of the model");
  o.tol = 0;
  EXPECT_EQ(msg(o, 241), "--tol must be in (0, 1)");
  o = {};
  o.max_iter = 0;
  EXPECT_EQ(msg(o, 241), "--max-iter must be at least 1");
  o = {};
  o.constraints.resize(7);
  o.constraints[2] = {false, 10, 5};
  EXPECT_EQ(msg(o, 241), "bound of fwhm0 is empty or NaN (need LO <= HI)");
  for (auto& pc : o.constraints) pc = {true, -INFINITY, INFINITY};
  EXPECT_EQ(msg(o, 241), "every parameter is fixed: nothing to fit");

  std::vector<float> y(241, 1.0f), w(241, 1.0f), start(c.start.begin(), c.start.end());
  fit::FitBatch b{c.x, y.data(), w.data(), nullptr, start.data(), 1};
  fit::FitOptions mle;
  mle.estimator = fit::Estimator::mle;
  EXPECT_THROW(fit::fit_batch(c.spec, b, mle), std::invalid_argument);
  EXPECT_THROW(fit::make_model_spec("voigt", 1, "constant", c.x), std::invalid_argument);
  EXPECT_THROW(fit::make_model_spec("lorentzian", 0, "constant", c.x), std::invalid_argument);
  EXPECT_THROW(fit::make_model_spec("lorentzian", 9, "constant", c.x), std::invalid_argument);
}

// Same spectra with 1, 2, 3 and 7 threads, and a sub-range fitted on its own:
// every output bit-identical.
TEST(FitBatchDeterminism, ThreadCountAndBatchSplitDoNotChangeBits) {
  Case c = lorentzian_case(2, true, 1.0);
  const int n = 1000, P = c.spec.n_params(), m = int(c.x.size());
  std::vector<float> y, start;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int i = 0; i < n; ++i) {
    auto t = c.truth;
    t[2] += 5 * u(rng);
    t[5] += 5 * u(rng);
    append_spectrum(c.spec, t, c.x, 3e-3, rng, y);
    start.insert(start.end(), c.start.begin(), c.start.end());
  }
  y[123 * m + 4] = NAN;  // a state-3 pixel in the mix
  auto run = [&](int threads, int first, int count) {
    fit::FitOptions o;
    o.threads = threads;
    fit::FitBatch b{c.x, y.data() + size_t(first) * m, nullptr, nullptr,
                    start.data() + size_t(first) * P, count};
    return fit::fit_batch(c.spec, b, o);
  };
  const auto ref = run(1, 0, n);
  auto same = [](const auto& a, const auto& b, size_t offset, size_t count) {
    return std::memcmp(a.data() + offset, b.data(), count * sizeof(a[0])) == 0;
  };
  for (int threads : {2, 3, 7}) {
    const auto r = run(threads, 0, n);
    EXPECT_TRUE(same(ref.params, r.params, 0, r.params.size())) << threads << " threads";
    EXPECT_TRUE(same(ref.sigma, r.sigma, 0, r.sigma.size())) << threads << " threads";
    EXPECT_TRUE(same(ref.chi2, r.chi2, 0, r.chi2.size())) << threads << " threads";
    EXPECT_EQ(ref.state, r.state);
    EXPECT_EQ(ref.iterations, r.iterations);
  }
  const int first = 301, count = 397;
  const auto part = run(2, first, count);
  EXPECT_TRUE(same(ref.params, part.params, size_t(first) * P, size_t(count) * P));
  EXPECT_TRUE(same(ref.sigma, part.sigma, size_t(first) * P, size_t(count) * P));
  EXPECT_TRUE(same(ref.chi2, part.chi2, first, count));
  EXPECT_TRUE(same(ref.iterations, part.iterations, first, count));
  int converged = 0;
  for (int s : ref.state) converged += s == 0;
  EXPECT_GE(converged, n * 95 / 100);  // the comparison is about fitted numbers, not NaNs
}

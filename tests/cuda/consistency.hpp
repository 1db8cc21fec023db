// Synthetic spectra and the comparison rules shared by the cross-backend tests:
// test_cuda_fit.cpp (the CUDA backend against the CPU backend, on a GPU) and
// test_fit_pixel.cpp (the per-spectrum GPU code run on the CPU, everywhere).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <utility>
#include <string>
#include <vector>

#include "api/fit_cuda_bridge.hpp"
#include "cuda/fit_cuda.hpp"
#include "fit/batch.hpp"
#include "fit/model_spec.hpp"

namespace tessera::test_cuda {

using fit::FitOptions;
using fit::FitResults;
using fit::ModelKind;
using fit::ModelSpec;
namespace tc = tessera::cuda;

// Spectra, start values and truths of one synthetic data set.
struct Problem {
  ModelSpec spec;
  std::vector<float> x;
  std::vector<float> y;        // [n_pix][n_points]
  std::vector<float> weights;  // empty or [n_pix][n_points]
  std::vector<float> start;    // [n_pix][n_params]
  std::vector<float> truth;    // [n_pix][n_params] parameters the spectra were made with
  std::vector<std::uint8_t> mask;
  std::int64_t n_pix = 0;
  int n_points() const { return int(x.size()); }
};

inline std::vector<float> linspace(double a, double b, int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = float(a + (b - a) * i / (n - 1));
  return v;
}

// Fills y (and start) for n_pix pixels: truth(pix) gives the true parameters,
// perturb(truth) the start; Gaussian noise of `noise`, or Poisson counts.
template <class Truth, class Perturb>
Problem make_problem(const ModelSpec& spec, std::vector<float> x, std::int64_t n_pix,
                     double noise, bool poisson, Truth truth, Perturb perturb) {
  Problem p;
  p.spec = spec;
  p.x = std::move(x);
  p.n_pix = n_pix;
  const int n = p.n_points(), P = spec.n_params();
  std::vector<double> xd(p.x.begin(), p.x.end());
  std::mt19937_64 rng(12345);
  std::normal_distribution<double> gauss(0.0, 1.0);
  p.y.resize(std::size_t(n_pix) * n);
  p.start.resize(std::size_t(n_pix) * P);
  p.truth.resize(std::size_t(n_pix) * P);
  for (std::int64_t pix = 0; pix < n_pix; ++pix) {
    const std::vector<double> t = truth(pix, rng);
    const std::vector<double> f = tessera::fit::model_values(spec, t, xd);
    for (int i = 0; i < n; ++i) {
      double v = f[i] + noise * gauss(rng);
      if (poisson) v = double(std::poisson_distribution<long>(std::max(f[i], 1e-9))(rng));
      p.y[std::size_t(pix) * n + i] = float(v);
    }
    const std::vector<double> s = perturb(t);
    for (int j = 0; j < P; ++j) {
      p.start[std::size_t(pix) * P + j] = float(s[j]);
      p.truth[std::size_t(pix) * P + j] = float(t[j]);
    }
  }
  return p;
}

using tessera::api::to_cuda;  // the library's own conversion (src/api/fit_cuda_bridge.hpp)

inline FitResults fit_cpu(const Problem& p, const FitOptions& o) {
  tessera::fit::FitBatch b;
  b.x = p.x;
  b.y = p.y.data();
  b.weights = p.weights.empty() ? nullptr : p.weights.data();
  b.mask = p.mask.empty() ? nullptr : p.mask.data();
  b.start = p.start.data();
  b.n_pix = p.n_pix;
  return tessera::fit::fit_batch(p.spec, b, o);
}

// How close two float backends must be. Both run the same float LM, but in
// different summation orders (SIMD tiles on the CPU, one thread per fit on the
// GPU) and with different exp/log and fused multiply-adds. Most fits then end
// bit-identical or within 1e-4 relative; a few stop at the float engine's
// rounding floor, where chi2 changes are below its own rounding error, up to
// about 0.1 sigma apart (1e-3 relative on a width). A real defect (a wrong
// stride, weight, bound or derivative) moves every fit by a sizeable fraction
// of sigma, which the rms bound catches even when the per-value bound would not.
struct Tolerance {
  double rel = 1e-4;         // |dp| <= rel * |p| ...
  double sigma_frac = 0.2;   // ... or |dp| <= sigma_frac * sigma, for every value
  double rms = 0.02;         // rms of dp / sigma over all fitted free values
  double sigma_rel = 0.05;   // one-sigma errors (evaluated at slightly different p)
  double chi2_rel = 1e-3;
};

inline bool params_agree(float cpu, float gpu, float sigma, const Tolerance& t) {
  if (std::isnan(cpu) || std::isnan(gpu)) return std::isnan(cpu) && std::isnan(gpu);
  const double d = std::fabs(double(cpu) - double(gpu));
  return d <= t.rel * std::max(std::fabs(cpu), std::fabs(gpu)) ||
         d <= t.sigma_frac * std::fabs(sigma);
}

inline bool sigmas_agree(float cpu, float gpu, const Tolerance& t) {
  if (std::isnan(cpu) || std::isnan(gpu)) return std::isnan(cpu) && std::isnan(gpu);
  return std::fabs(double(cpu) - double(gpu)) <=
         t.sigma_rel * std::max(std::fabs(cpu), std::fabs(gpu));
}

// Same state for every pixel; close parameters, sigmas and chi-squares where
// fitted (NaN chi2 where not). Reports the first ten bad pixels in full and
// counts the rest. Returns the number of fitted (converged or iteration-limit)
// pixels.
inline std::int64_t expect_consistent(const Problem& p, const FitResults& cpu,
                                      const FitResults& gpu, const Tolerance& tol = {}) {
  const int P = p.spec.n_params();
  const auto names = p.spec.param_names();
  std::int64_t fitted = 0, bad_pixels = 0, n_free = 0;
  double sum2 = 0;
  for (std::int64_t pix = 0; pix < p.n_pix; ++pix) {
    std::ostringstream why;
    if (cpu.state[pix] != gpu.state[pix])
      why << " state " << cpu.state[pix] << " and " << gpu.state[pix] << ";";
    for (int j = 0; j < P; ++j) {
      const std::size_t k = std::size_t(pix) * P + j;
      if (!params_agree(cpu.params[k], gpu.params[k], cpu.sigma[k], tol))
        why << " " << names[j] << " " << cpu.params[k] << " and " << gpu.params[k] << " (sigma "
            << cpu.sigma[k] << ");";
      if (!sigmas_agree(cpu.sigma[k], gpu.sigma[k], tol))
        why << " sigma of " << names[j] << " " << cpu.sigma[k] << " and " << gpu.sigma[k] << ";";
    }
    const bool fit_ok = cpu.state[pix] <= 1;
    const double dchi2 = std::fabs(double(cpu.chi2[pix]) - double(gpu.chi2[pix]));
    if (fit_ok && !(dchi2 <= tol.chi2_rel * std::fabs(cpu.chi2[pix])))
      why << " chi2 " << cpu.chi2[pix] << " and " << gpu.chi2[pix] << ";";
    if (!fit_ok && !std::isnan(gpu.chi2[pix])) why << " chi2 " << gpu.chi2[pix] << " unfitted;";
    if (!why.str().empty() && ++bad_pixels <= 10)
      ADD_FAILURE() << "pixel " << pix << ":" << why.str();

    if (!fit_ok || cpu.state[pix] != gpu.state[pix]) continue;
    ++fitted;
    for (int j = 0; j < P; ++j) {
      const std::size_t k = std::size_t(pix) * P + j;
      if (!(cpu.sigma[k] > 0)) continue;  // fixed
      const double z = (double(cpu.params[k]) - double(gpu.params[k])) / cpu.sigma[k];
      sum2 += z * z;
      ++n_free;
    }
  }
  EXPECT_EQ(bad_pixels, 0) << "pixels that differ, of " << p.n_pix;
  if (n_free > 0) {
    EXPECT_LE(std::sqrt(sum2 / double(n_free)), tol.rms)
        << "systematic difference over " << n_free << " fitted values, in units of sigma";
  }
  return fitted;
}

inline void expect_identical(const FitResults& a, const FitResults& b) {
  auto same = [](float u, float v) { return (std::isnan(u) && std::isnan(v)) || u == v; };
  ASSERT_EQ(a.params.size(), b.params.size());
  for (std::size_t k = 0; k < a.params.size(); ++k) {
    ASSERT_TRUE(same(a.params[k], b.params[k])) << "params[" << k << "]";
    ASSERT_TRUE(same(a.sigma[k], b.sigma[k])) << "sigma[" << k << "]";
  }
  for (std::size_t k = 0; k < a.chi2.size(); ++k) {
    ASSERT_TRUE(same(a.chi2[k], b.chi2[k])) << "chi2[" << k << "]";
    ASSERT_EQ(a.state[k], b.state[k]) << "state[" << k << "]";
    ASSERT_EQ(a.iterations[k], b.iterations[k]) << "iterations[" << k << "]";
  }
}

// ODMR-like spectra: n_peaks dips over 2800..2940 MHz (wider for many peaks).
inline Problem odmr(ModelKind kind, int n_peaks, bool linear, std::int64_t n_pix,
                    double noise = 2e-4) {
  const double span = std::max(140.0, 40.0 * n_peaks + 40.0);
  const auto x = linspace(2870 - span / 2, 2870 + span / 2, int(span) + 1);
  const ModelSpec spec = tessera::fit::make_model_spec(
      kind == ModelKind::gaussian ? "gaussian" : "lorentzian", n_peaks,
      linear ? "linear" : "constant", x);
  auto truth = [=](std::int64_t, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(-1, 1);
    std::vector<double> t{1.0 + 0.01 * u(rng)};
    if (linear) t.push_back(2e-5 * (1.5 + u(rng)));
    for (int k = 0; k < n_peaks; ++k) {
      const double centre = 2870 - span / 2 + 40 + 40.0 * k;
      t.insert(t.end(), {centre + 2 * u(rng), 8 + u(rng), -0.02 * (1 + 0.2 * u(rng))});
    }
    return t;
  };
  auto perturb = [=](std::vector<double> t) {
    if (linear) t[1] = 0;
    for (int k = 0, b = linear ? 2 : 1; k < n_peaks; ++k, b += 3) {
      t[b] += 0.8;
      t[b + 1] *= 1.2;
      t[b + 2] *= 0.8;
    }
    t[0] = 1.0;
    return t;
  };
  return make_problem(spec, x, n_pix, noise, false, truth, perturb);
}

// Empty results of the right size for a problem.
inline FitResults empty_results(const Problem& p) {
  const int P = p.spec.n_params();
  FitResults r;
  r.n_params = P;
  r.params.resize(std::size_t(p.n_pix) * P);
  r.sigma.resize(std::size_t(p.n_pix) * P);
  r.chi2.resize(p.n_pix);
  r.state.resize(p.n_pix);
  r.iterations.resize(p.n_pix);
  return r;
}

// [n_pix][n_points] -> [n_points][n_pix]; empty stays empty.
inline std::vector<float> to_sweep_major(const std::vector<float>& v, std::int64_t n_pix,
                                         int n_points) {
  std::vector<float> t(v.size());
  if (v.empty()) return t;
  for (std::int64_t pix = 0; pix < n_pix; ++pix)
    for (int i = 0; i < n_points; ++i)
      t[std::size_t(i) * n_pix + pix] = v[std::size_t(pix) * n_points + i];
  return t;
}

// ---- the cases both tests run ------------------------------------------------

// One consistency case: spectra, options, and the share of pixels that must
// end fitted (converged or iteration limit) for the case to mean something.
struct Case {
  Problem problem;
  FitOptions options;
  double min_fitted = 0.9;
  Tolerance tol;

  Case() = default;
  explicit Case(Problem p) : problem(std::move(p)) {}
};

inline Case case_stretched_exp(std::int64_t n_pix) {
  ModelSpec spec;
  spec.kind = ModelKind::stretched_exp;
  return Case{make_problem(
      spec, linspace(0, 5, 60), n_pix, 1e-3, false,
      [](std::int64_t, std::mt19937_64& rng) {
        std::uniform_real_distribution<double> u(-1, 1);
        return std::vector<double>{0.9 + 0.02 * u(rng), 0.1 * (1 + 0.2 * u(rng)),
                                   1.0 + 0.3 * u(rng), 0.8 + 0.1 * u(rng)};
      },
      [](std::vector<double> t) {
        t[2] *= 1.3;
        t[3] = 1.0;
        return t;
      })};
}

inline Case case_damped_cosine(std::int64_t n_pix) {
  ModelSpec spec;
  spec.kind = ModelKind::damped_cosine;
  return Case{make_problem(
      spec, linspace(0, 2, 100), n_pix, 1e-3, false,
      [](std::int64_t, std::mt19937_64& rng) {
        std::uniform_real_distribution<double> u(-1, 1);
        return std::vector<double>{0.5 + 0.01 * u(rng), 0.1 * (1 + 0.2 * u(rng)),
                                   1.0 + 0.2 * u(rng), 3.0 + 0.2 * u(rng), 0.3 + 0.1 * u(rng)};
      },
      [](std::vector<double> t) {
        t[2] *= 1.2;
        t[3] += 0.05;
        t[4] += 0.1;
        return t;
      })};
}

// Photon counts fitted by Poisson maximum likelihood.
inline Case case_poisson_mle(std::int64_t n_pix) {
  const auto x = linspace(2840, 2900, 61);
  const ModelSpec spec = fit::make_model_spec("lorentzian", 1, "constant", x);
  Case c{make_problem(
      spec, x, n_pix, 0, true,
      [](std::int64_t, std::mt19937_64& rng) {
        std::uniform_real_distribution<double> u(-1, 1);
        return std::vector<double>{1000 + 20 * u(rng), 2870 + 2 * u(rng), 8 + u(rng),
                                   -100 * (1 + 0.2 * u(rng))};
      },
      [](std::vector<double> t) {
        t[1] += 0.8;
        t[2] *= 1.2;
        t[3] *= 0.8;
        return t;
      })};
  c.options.estimator = fit::Estimator::mle;
  return c;
}

inline const std::vector<std::string>& case_names() {
  static const std::vector<std::string> names{
      "lorentzian_2_linear", "gaussian_1_constant", "lorentzian_8_linear", "gaussian_8_linear",
      "weighted",            "poisson_mle",         "stretched_exp",       "damped_cosine",
      "fixed_and_bounded"};
  return names;
}

// The case of a name; `scale` multiplies the number of pixels (GPU runs take
// more than the CPU-only runs).
inline Case make_case(const std::string& name, std::int64_t scale = 1) {
  if (name == "lorentzian_2_linear") return Case{odmr(ModelKind::lorentzian, 2, true, 500 * scale)};
  if (name == "gaussian_1_constant") return Case{odmr(ModelKind::gaussian, 1, false, 500 * scale)};
  if (name == "lorentzian_8_linear") return Case{odmr(ModelKind::lorentzian, 8, true, 60 * scale)};
  if (name == "gaussian_8_linear") return Case{odmr(ModelKind::gaussian, 8, true, 60 * scale)};
  if (name == "weighted") {
    Case c{odmr(ModelKind::lorentzian, 1, false, 300 * scale)};
    c.problem.weights.resize(c.problem.y.size());
    for (std::size_t k = 0; k < c.problem.weights.size(); ++k)
      c.problem.weights[k] = 1.0f + 0.5f * float(k % 7);
    return c;
  }
  if (name == "poisson_mle") return case_poisson_mle(300 * scale);
  if (name == "stretched_exp") return case_stretched_exp(300 * scale);
  if (name == "damped_cosine") return case_damped_cosine(300 * scale);
  if (name == "fixed_and_bounded") {
    Case c{odmr(ModelKind::lorentzian, 2, false, 300 * scale)};
    Problem& p = c.problem;
    const int P = p.spec.n_params();
    c.options.constraints.resize(P);
    c.options.constraints[0].fixed = true;  // offset keeps its start value: the true one
    for (std::int64_t pix = 0; pix < p.n_pix; ++pix)
      p.start[std::size_t(pix) * P] = p.truth[std::size_t(pix) * P];
    c.options.constraints[2].lo = 7.5;  // fwhm0 bounded; true values 7..9
    c.options.constraints[2].hi = 8.5;
    // A fit with a parameter held at its bound can be declared converged while
    // the others still move (seen: 0.23 sigma, chi2 0.6% above the other
    // backend's): looser per-value bounds here, the same rms bound.
    c.tol.sigma_frac = 0.5;
    c.tol.chi2_rel = 1e-2;
    return c;
  }
  ADD_FAILURE() << "unknown case " << name;
  return {};
}

// Pixels that cannot be fitted: 3 masked, 5 and 6 non-finite input, 8 bad
// start (NaN offset), 9 singular (zero amplitude: the peak has no effect).
inline Problem unfittable_problem() {
  Problem p = odmr(ModelKind::lorentzian, 1, false, 64);
  const int n = p.n_points(), P = p.spec.n_params();
  p.mask.assign(p.n_pix, 0);
  p.mask[3] = 1;
  p.y[std::size_t(5) * n + 7] = std::numeric_limits<float>::quiet_NaN();
  p.y[std::size_t(6) * n + 9] = std::numeric_limits<float>::infinity();
  p.start[std::size_t(8) * P + 0] = std::numeric_limits<float>::quiet_NaN();
  p.start[std::size_t(9) * P + 3] = 0;
  return p;
}

inline void expect_unfittable_states(const Problem& p, const FitResults& r) {
  using core::FitState;
  using core::state_value;
  EXPECT_EQ(r.state[3], state_value(FitState::masked));
  EXPECT_EQ(r.state[5], state_value(FitState::nonfinite_input));
  EXPECT_EQ(r.state[6], state_value(FitState::nonfinite_input));
  EXPECT_EQ(r.state[8], state_value(FitState::bad_start));
  EXPECT_EQ(r.state[9], state_value(FitState::singular));
  const int P = p.spec.n_params();
  for (int pix : {3, 5, 6, 8, 9}) {
    for (int j = 0; j < P; ++j) EXPECT_TRUE(std::isnan(r.params[std::size_t(pix) * P + j]));
    EXPECT_TRUE(std::isnan(r.chi2[pix]));
  }
}

}  // namespace tessera::test_cuda

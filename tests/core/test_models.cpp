// Every model's analytic derivatives against central finite differences, in
// double, at several points of its domain (Ceres gradient_checker style).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/models/decays.hpp"
#include "core/models/peaks.hpp"

using namespace tessera::core;

namespace {

// Checks J against a five-point central difference, at every x; the tolerance scales with the size of f and J.
template <class Model>
void check_jacobian(const Model& m, std::vector<double> p, const std::vector<double>& xs) {
  constexpr int P = Model::n_params;
  ASSERT_EQ(int(p.size()), P);
  // Step per parameter: one that moves f by about 1e-5 where f is most
  // sensitive to it, so that neither rounding nor truncation matters.
  double h[P];
  for (int j = 0; j < P; ++j) {
    double jmax = 0;
    for (double x : xs) {
      double f, J[P];
      eval_full(m, x, p.data(), f, J);
      jmax = std::max(jmax, std::abs(J[j]));
    }
    ASSERT_GT(jmax, 0) << "parameter " << j << " has no effect on the model";
    h[j] = 1e-5 / jmax;
  }
  for (double x : xs) {
    double f, J[P];
    eval_full(m, x, p.data(), f, J);
    ASSERT_TRUE(std::isfinite(f)) << "x=" << x;
    for (int j = 0; j < P; ++j) {
      // Five-point stencil: truncation error O(h^4), far below the tolerance.
      auto f_at = [&](double dp) {
        std::vector<double> q = p;
        q[j] += dp;
        double fq, Jq[P];
        eval_full(m, x, q.data(), fq, Jq);
        return fq;
      };
      const double numeric =
          (-f_at(2 * h[j]) + 8 * f_at(h[j]) - 8 * f_at(-h[j]) + f_at(-2 * h[j])) / (12 * h[j]);
      const double tol = 1e-6 * (std::abs(J[j]) + std::abs(numeric)) + 1e-9 * (1 + std::abs(f));
      EXPECT_NEAR(J[j], numeric, tol) << "parameter " << j << " at x=" << x;
    }
  }
}

std::vector<double> sweep(double a, double b, int n) {
  std::vector<double> x(n);
  for (int i = 0; i < n; ++i) x[i] = a + (b - a) * i / (n - 1);
  return x;
}

}  // namespace

TEST(ModelDerivatives, LorentzianOnePeakConstant) {
  Lorentzian<1, false> m;
  check_jacobian(m, {1.0, 2870.0, 9.0, -0.012}, sweep(2820, 2920, 41));
}

TEST(ModelDerivatives, LorentzianTwoPeaksLinear) {
  Lorentzian<2, true> m;
  m.x_mid = 2870;
  check_jacobian(m, {1.0, 2e-5, 2850.0, 8.0, -0.01, 2893.0, 11.0, -0.015}, sweep(2800, 2940, 57));
}

TEST(ModelDerivatives, LorentzianEightPeaks) {
  Lorentzian<8, false> m;
  std::vector<double> p{1.0};
  for (int k = 0; k < 8; ++k) {
    p.push_back(2720.0 + 40.0 * k);
    p.push_back(7.0 + 0.5 * k);
    p.push_back(-0.005 - 0.001 * k);
  }
  check_jacobian(m, p, sweep(2700, 3040, 69));
}

TEST(ModelDerivatives, GaussianTwoPeaksLinear) {
  Gaussian<2, true> m;
  m.x_mid = 2870;
  check_jacobian(m, {0.98, -3e-5, 2855.0, 10.0, -0.02, 2889.0, 6.0, 0.01}, sweep(2800, 2940, 57));
}

TEST(ModelDerivatives, GaussianEightPeaksConstant) {
  Gaussian<8, false> m;
  std::vector<double> p{1.0};
  for (int k = 0; k < 8; ++k) {
    p.push_back(2720.0 + 40.0 * k);
    p.push_back(12.0 + k);
    p.push_back(-0.01);
  }
  check_jacobian(m, p, sweep(2700, 3040, 69));
}

TEST(ModelDerivatives, StretchedExponential) {
  StretchedExp m;
  check_jacobian(m, {0.2, 0.8, 150.0, 0.7}, sweep(0, 1000, 51));   // includes x = 0
  check_jacobian(m, {1.0, -0.3, 2.5e3, 1.0}, sweep(1, 1e4, 31));
}

TEST(ModelDerivatives, DampedCosine) {
  DampedCosine m;
  check_jacobian(m, {0.5, 0.3, 800.0, 0.0125, 0.4}, sweep(0, 2000, 81));
  check_jacobian(m, {1.0, -0.1, 50.0, 0.2, -2.0}, sweep(0, 100, 61));
}

// The value the models compute, against the formulas of DESIGN.md written out.
TEST(ModelValues, MatchDesignFormulas) {
  const double x = 2861.5, xm = 2870;
  {
    Lorentzian<2, true> m;
    m.x_mid = xm;
    const double p[] = {1.0, 1e-4, 2850.0, 8.0, -0.01, 2893.0, 11.0, -0.015};
    double f, J[8];
    eval_full(m, x, p, f, J);
    const double want = 1.0 + 1e-4 * (x - xm) - 0.01 / (1 + std::pow((x - 2850.0) / 4.0, 2)) -
                        0.015 / (1 + std::pow((x - 2893.0) / 5.5, 2));
    EXPECT_NEAR(f, want, 1e-14);
  }
  {
    Gaussian<1, false> m;
    const double p[] = {1.0, 2860.0, 9.0, -0.02};
    double f, J[4];
    eval_full(m, x, p, f, J);
    const double want = 1.0 - 0.02 * std::exp(-4 * std::log(2.0) * std::pow(x - 2860.0, 2) / 81.0);
    EXPECT_NEAR(f, want, 1e-14);
  }
  {
    StretchedExp m;
    const double p[] = {0.1, 0.9, 300.0, 0.6};
    double f, J[4];
    eval_full(m, 120.0, p, f, J);
    EXPECT_NEAR(f, 0.1 + 0.9 * std::exp(-std::pow(120.0 / 300.0, 0.6)), 1e-14);
  }
  {
    DampedCosine m;
    const double p[] = {0.5, 0.3, 800.0, 0.0125, 0.4};
    double f, J[5];
    eval_full(m, 120.0, p, f, J);
    const double want = 0.5 + 0.3 * std::exp(-120.0 / 800.0) * std::cos(2 * M_PI * 0.0125 * 120.0 + 0.4);
    EXPECT_NEAR(f, want, 1e-14);
  }
}

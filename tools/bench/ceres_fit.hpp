// The Ceres Solver side of bench_fit: one ceres::Problem per pixel, one
// automatic-differentiation cost function holding all the residuals of the
// pixel, Levenberg-Marquardt with a dense solver, one thread. This is how a
// Ceres user fits a stack of spectra one problem at a time.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tessera::bench {

struct CeresSettings {
  // Ceres's defaults are 1e-6 / 1e-8 / 1e-10; the function tolerance is tightened
  // so that Ceres runs to full convergence (it stops at the first of the three).
  double function_tolerance = 1e-10;
  double parameter_tolerance = 1e-8;
  double gradient_tolerance = 1e-10;
  int max_iterations = 100;
  bool dense_qr = true;  // else DENSE_NORMAL_CHOLESKY

  std::string describe() const;
};

struct CeresFitResults {
  int n_params = 0;
  std::vector<double> params;          // [n_pix][n_params]; NaN where Ceres found no usable solution
  std::vector<std::int32_t> iterations;   // successful + unsuccessful steps
  std::vector<std::uint8_t> converged;    // termination_type == CONVERGENCE
};

// Fits n_pix spectra y[pix * sweep.size() + i] of the Lorentzian-dips model with
// n_peaks dips and a constant offset, each from its start[pix * n_params ...].
CeresFitResults ceres_fit_lorentzian(int n_peaks, std::span<const float> sweep, const float* y,
                                     const float* start, std::int64_t n_pix, const CeresSettings& settings);

}  // namespace tessera::bench

#include "ceres_fit.hpp"

#include <ceres/ceres.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "odmr_cases.hpp"

namespace tessera::bench {
namespace {

// Residuals f(x_i; p) - y_i of offset + sum_k amp_k / (1 + u_k^2),
// u_k = 2 (x_i - pos_k) / fwhm_k, all points of one pixel in one block.
template <int NPeaks> struct LorentzianDipsResidual {
  const double* x;
  const double* y;
  int n_points;

  template <class T> bool operator()(const T* p, T* r) const {
    T pos[NPeaks], two_over_fwhm[NPeaks], amp[NPeaks];
    for (int k = 0; k < NPeaks; ++k) {
      pos[k] = p[pos_index(k)];
      two_over_fwhm[k] = T(2.0) / p[fwhm_index(k)];
      amp[k] = p[amp_index(k)];
    }
    for (int i = 0; i < n_points; ++i) {
      T f = p[0];
      for (int k = 0; k < NPeaks; ++k) {
        const T u = (x[i] - pos[k]) * two_over_fwhm[k];
        f += amp[k] / (T(1.0) + u * u);
      }
      r[i] = f - y[i];
    }
    return true;
  }
};

// NPoints: the residual count as a compile-time constant for the benchmark's
// sweeps (Ceres then sizes its arrays statically), ceres::DYNAMIC otherwise.
template <int NPeaks, int NPoints>
CeresFitResults fit_all(std::span<const float> sweep, const float* y, const float* start, std::int64_t n_pix,
                        const CeresSettings& settings) {
  constexpr int n_params = 1 + 3 * NPeaks;
  using Residual = LorentzianDipsResidual<NPeaks>;
  using Cost = ceres::AutoDiffCostFunction<Residual, NPoints, n_params>;
  const int n_points = static_cast<int>(sweep.size());

  ceres::Solver::Options options;
  options.minimizer_type = ceres::TRUST_REGION;
  options.trust_region_strategy_type = ceres::LEVENBERG_MARQUARDT;
  options.linear_solver_type = settings.dense_qr ? ceres::DENSE_QR : ceres::DENSE_NORMAL_CHOLESKY;
  options.function_tolerance = settings.function_tolerance;
  options.parameter_tolerance = settings.parameter_tolerance;
  options.gradient_tolerance = settings.gradient_tolerance;
  options.max_num_iterations = settings.max_iterations;
  options.num_threads = 1;
  options.minimizer_progress_to_stdout = false;
  options.logging_type = ceres::SILENT;

  CeresFitResults out;
  out.n_params = n_params;
  out.params.assign(static_cast<std::size_t>(n_pix) * n_params, std::numeric_limits<double>::quiet_NaN());
  out.iterations.assign(n_pix, 0);
  out.converged.assign(n_pix, 0);

  const std::vector<double> x(sweep.begin(), sweep.end());
  std::vector<double> yd(n_points);
  for (std::int64_t pix = 0; pix < n_pix; ++pix) {
    const float* yp = y + pix * n_points;
    for (int i = 0; i < n_points; ++i) yd[i] = yp[i];
    double p[n_params];
    for (int j = 0; j < n_params; ++j) p[j] = start[pix * n_params + j];

    ceres::Problem problem;
    Cost* cost;
    if constexpr (NPoints == ceres::DYNAMIC)
      cost = new Cost(new Residual{x.data(), yd.data(), n_points}, n_points);
    else
      cost = new Cost(new Residual{x.data(), yd.data(), n_points});
    problem.AddResidualBlock(cost, nullptr, p);
    ceres::Solver::Summary summary;
    ceres::Solve(options, &problem, &summary);

    out.iterations[pix] = summary.num_successful_steps + summary.num_unsuccessful_steps;
    out.converged[pix] = summary.termination_type == ceres::CONVERGENCE;
    if (summary.IsSolutionUsable())
      for (int j = 0; j < n_params; ++j) out.params[pix * n_params + j] = p[j];
  }
  return out;
}

template <int NPeaks>
CeresFitResults fit_dynamic(std::span<const float> sweep, const float* y, const float* start, std::int64_t n_pix,
                            const CeresSettings& settings) {
  return fit_all<NPeaks, ceres::DYNAMIC>(sweep, y, start, n_pix, settings);
}

}  // namespace

std::string CeresSettings::describe() const {
  std::ostringstream s;
  s << "LEVENBERG_MARQUARDT, " << (dense_qr ? "DENSE_QR" : "DENSE_NORMAL_CHOLESKY")
    << ", AutoDiffCostFunction (all residuals of a pixel in one block), one Problem per pixel, 1 thread, "
    << "function_tolerance " << function_tolerance << ", parameter_tolerance " << parameter_tolerance
    << ", gradient_tolerance " << gradient_tolerance << ", max " << max_iterations << " iterations";
  return s.str();
}

CeresFitResults ceres_fit_lorentzian(int n_peaks, std::span<const float> sweep, const float* y,
                                     const float* start, std::int64_t n_pix, const CeresSettings& settings) {
  const auto n_points = sweep.size();
  if (n_peaks == 2 && n_points == 100) return fit_all<2, 100>(sweep, y, start, n_pix, settings);
  if (n_peaks == 8 && n_points == 241) return fit_all<8, 241>(sweep, y, start, n_pix, settings);
  switch (n_peaks) {
    case 1: return fit_dynamic<1>(sweep, y, start, n_pix, settings);
    case 2: return fit_dynamic<2>(sweep, y, start, n_pix, settings);
    case 3: return fit_dynamic<3>(sweep, y, start, n_pix, settings);
    case 4: return fit_dynamic<4>(sweep, y, start, n_pix, settings);
    case 5: return fit_dynamic<5>(sweep, y, start, n_pix, settings);
    case 6: return fit_dynamic<6>(sweep, y, start, n_pix, settings);
    case 7: return fit_dynamic<7>(sweep, y, start, n_pix, settings);
    case 8: return fit_dynamic<8>(sweep, y, start, n_pix, settings);
    default: throw std::invalid_argument("ceres_fit_lorentzian: n_peaks must be 1..8");
  }
}

}  // namespace tessera::bench

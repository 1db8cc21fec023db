// The CPU batch API: fits many spectra with several threads. Inside a thread the
// spectra advance one per SIMD lane of a core::Pack<float, W>, W the floats of
// one vector register of the target (16 with AVX-512, 8 with AVX2, else 4;
// batch_impl.hpp); a lane whose fit ends is refilled with the next spectrum at
// once, so a slow fit does not hold the finished lanes. Each fit is computed by the same
// instruction sequence whatever its lane, thread or batch, so results are
// bit-identical for any thread count and batch size.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "core/fit_types.hpp"
#include "core/threads.hpp"
#include "model_spec.hpp"

namespace tessera::fit {

using core::Estimator;
using core::FitState;

struct ParamConstraint {
  bool fixed = false;  // keep the start value
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
};

struct FitOptions {
  Estimator estimator = Estimator::lse;
  int max_iter = 100;
  double tol = 1e-6;  // relative chi-square change and relative step
  int threads = 0;    // 0: the cores this process may run on (its affinity mask)
  std::vector<ParamConstraint> constraints;  // empty, or one per parameter
  // Called from worker threads with the number of spectra just finished; must be thread-safe.
  std::function<void(std::int64_t)> progress;
  // Also return each fit's whole covariance matrix (FitResults::covariance),
  // for the uncertainty of functions of several parameters.
  bool covariance = false;

  // Empty when the options suit this model and sweep length, else a one-line message.
  std::string validate(const ModelSpec& spec, int n_points) const;
};

// Input spectra, pixel-major: y[pix * n_points + i].
struct FitBatch {
  std::span<const float> x;             // the sweep, n_points values
  const float* y = nullptr;             // [n_pix][n_points]
  const float* weights = nullptr;       // optional [n_pix][n_points], LSE only (1/sigma^2)
  const std::uint8_t* mask = nullptr;   // optional [n_pix], nonzero = skip (state masked)
  const float* start = nullptr;         // [n_pix][n_params] start values
  std::int64_t n_pix = 0;
};

struct FitResults {
  int n_params = 0;
  std::vector<float> params;   // [n_pix][n_params], NaN unless fitted
  std::vector<float> sigma;    // [n_pix][n_params] one-sigma errors
  std::vector<float> chi2;     // [n_pix] chi-square (LSE) or deviance (MLE)
  std::vector<std::int32_t> state;       // [n_pix] FitState values
  std::vector<std::int32_t> iterations;  // [n_pix]
  // With options.covariance: [n_pix][n_params (n_params + 1) / 2], the packed
  // lower triangle (core::tri) of which sigma is the diagonal's square root.
  std::vector<float> covariance;
};

// Throws std::invalid_argument when options.validate() fails.
FitResults fit_batch(const ModelSpec& spec, const FitBatch& batch, const FitOptions& options);

// The whole covariance of fits that ran elsewhere (the GPU, which returns
// none), [n_pix][n_params (n_params + 1) / 2] as FitResults::covariance: for
// each pixel whose state is converged or iteration_limit, the normal matrix
// and chi-square evaluated at its fitted parameters (batch.start) and scaled
// as at the end of a fit; NaN for the others. One evaluation per pixel, in
// scalar arithmetic, so it may differ from the CPU fit's own covariance by
// rounding.
std::vector<float> covariance_at(const ModelSpec& spec, const FitBatch& batch, const std::int32_t* state,
                                 const FitOptions& options);

// The default thread count of fit_batch (threads = 0), and of tessera xcorr.
using core::usable_cores;

}  // namespace tessera::fit

#include "batch.hpp"

#include <cmath>
#include <stdexcept>

#include "batch_families.hpp"
#include "batch_impl.hpp"
#include "user_model.hpp"

namespace tessera::fit {

std::string FitOptions::validate(const ModelSpec& spec, int n_points) const {
  const int P = spec.n_params();
  if (max_iter < 1) return "--max-iter must be at least 1";
  if (!(tol > 0) || !std::isfinite(tol) || tol >= 1) return "--tol must be in (0, 1)";
  if (threads < 0) return "--threads must be 0 (all cores) or positive";
  if (!constraints.empty() && int(constraints.size()) != P)
    return "internal: constraints must be empty or one per parameter";
  int n_free = 0;
  const auto names = spec.param_names();
  for (int j = 0; j < P; ++j) {
    const ParamConstraint c = constraints.empty() ? ParamConstraint{} : constraints[j];
    if (std::isnan(c.lo) || std::isnan(c.hi) || c.lo > c.hi)
      return "bound of " + names[j] + " is empty or NaN (need LO <= HI)";
    n_free += c.fixed ? 0 : 1;
  }
  if (n_free == 0) return "every parameter is fixed: nothing to fit";
  if (n_points < n_free)
    return "the sweep has " + std::to_string(n_points) + " points, fewer than the " +
           std::to_string(n_free) + " free parameters of the model";
  return {};
}

FitResults fit_batch(const ModelSpec& spec, const FitBatch& batch, const FitOptions& options) {
  if (std::string msg = options.validate(spec, int(batch.x.size())); !msg.empty())
    throw std::invalid_argument(msg);
  for (float v : batch.x)
    if (!std::isfinite(v)) throw std::invalid_argument("the sweep holds a non-finite value");
  if (batch.weights && options.estimator == Estimator::mle)
    throw std::invalid_argument("weights apply to least squares only, not to --estimator mle");
  if (batch.n_pix < 0 || (batch.n_pix > 0 && (!batch.y || !batch.start)))
    throw std::invalid_argument("internal: fit_batch needs spectra and start values");

  const int P = spec.n_params();
  FitResults r;
  r.n_params = P;
  r.params.resize(size_t(batch.n_pix) * P);
  r.sigma.resize(size_t(batch.n_pix) * P);
  r.chi2.resize(batch.n_pix);
  r.state.resize(batch.n_pix);
  r.iterations.resize(batch.n_pix);
  if (options.covariance) r.covariance.resize(std::size_t(batch.n_pix) * std::size_t(P * (P + 1) / 2));
  if (batch.n_pix == 0) return r;
  switch (spec.kind) {
    case ModelKind::lorentzian: detail::fit_lorentzian(spec, batch, options, r); break;
    case ModelKind::gaussian: detail::fit_gaussian(spec, batch, options, r); break;
    case ModelKind::expression: spec.user->fit(batch, options, r); break;
    default: detail::fit_decay(spec, batch, options, r); break;
  }
  return r;
}

}  // namespace tessera::fit

// covariance_at (batch.hpp): the built-in models through visit_model, the
// models of the user's own through their compiled object.
#include <stdexcept>

#include "batch.hpp"
#include "batch_impl.hpp"
#include "model_dispatch.hpp"
#include "user_model.hpp"

namespace tessera::fit {

std::vector<float> covariance_at(const ModelSpec& spec, const FitBatch& batch, const std::int32_t* state,
                                 const FitOptions& options) {
  if (std::string msg = options.validate(spec, int(batch.x.size())); !msg.empty()) throw std::invalid_argument(msg);
  if (batch.n_pix < 0 || (batch.n_pix > 0 && (!batch.y || !batch.start || !state)))
    throw std::invalid_argument("internal: covariance_at needs spectra, parameters and states");
  const int P = spec.n_params();
  std::vector<float> cov(std::size_t(batch.n_pix) * std::size_t(P * (P + 1) / 2));
  if (batch.n_pix == 0) return cov;
  if (spec.kind == ModelKind::expression)
    spec.user->covariance(batch, state, options, cov.data());
  else
    visit_model(spec, [&](const auto& model) { detail::covariance_at(model, batch, state, options, cov.data()); });
  return cov;
}

}  // namespace tessera::fit

// Instantiates the CPU batch engine for the time-domain models.
#include "batch_impl.hpp"
#include "batch_families.hpp"
#include "model_dispatch.hpp"

namespace tessera::fit::detail {
void fit_decay(const ModelSpec& s, const FitBatch& b, const FitOptions& o, FitResults& r) {
  visit_decay(s, [&](const auto& m) { run_batch(m, b, o, r); });
}
}  // namespace tessera::fit::detail

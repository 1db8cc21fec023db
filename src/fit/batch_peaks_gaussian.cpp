// Instantiates the CPU batch engine for the Gaussian models (1..8 peaks,
// constant or linear background); one file per family keeps builds parallel.
#include "batch_impl.hpp"
#include "batch_families.hpp"
#include "model_dispatch.hpp"

namespace tessera::fit::detail {
void fit_gaussian(const ModelSpec& s, const FitBatch& b, const FitOptions& o, FitResults& r) {
  visit_gaussian(s, [&](const auto& m) { run_batch(m, b, o, r); });
}
}  // namespace tessera::fit::detail

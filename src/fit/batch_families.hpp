// One entry point per model family, each compiled in its own file.
#pragma once

#include "batch.hpp"

namespace tessera::fit::detail {
void fit_lorentzian(const ModelSpec&, const FitBatch&, const FitOptions&, FitResults&);
void fit_gaussian(const ModelSpec&, const FitBatch&, const FitOptions&, FitResults&);
void fit_decay(const ModelSpec&, const FitBatch&, const FitOptions&, FitResults&);
}  // namespace tessera::fit::detail

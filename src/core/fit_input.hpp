// Which spectra are fitted: one rule for the CPU lanes and the GPU kernels, so
// that both backends give an unfittable spectrum the same state.
#pragma once

#include <cstdint>

#include "fit_types.hpp"
#include "hd.hpp"
#include "scalar_math.hpp"

namespace tessera::core {

// True when none of the n values v[0], v[stride], ... is NaN or infinite.
TESSERA_HD inline bool all_finite(const float* v, int n, std::int64_t stride = 1) {
  bool ok = true;
  for (int i = 0; i < n; ++i) ok = ok && finite(v[std::int64_t(i) * stride]);
  return ok;
}

// A masked spectrum is not fitted (state masked), nor one with a NaN or an
// infinity among its n points y[i * stride] or, when w is given (least squares
// with weights), among its weights (state nonfinite_input). Returns true when
// the spectrum is fitted; otherwise false, with *unfitted set.
TESSERA_HD inline bool accept_spectrum(bool masked, const float* y, const float* w, int n,
                                       std::int64_t stride, FitState* unfitted) {
  if (masked) {
    *unfitted = FitState::masked;
    return false;
  }
  if (!all_finite(y, n, stride) || (w != nullptr && !all_finite(w, n, stride))) {
    *unfitted = FitState::nonfinite_input;
    return false;
  }
  return true;
}

}  // namespace tessera::core

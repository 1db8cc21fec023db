// Which spectra are fitted: one rule for the CPU lanes and the GPU kernels, so
// that both backends give an unfittable spectrum the same state.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fit_types.hpp"
#include "hd.hpp"
#include "scalar_math.hpp"

namespace tessera::core {

// True when none of the n values v[0], v[stride], ... is NaN or infinite.
// An OR over every value, without an early exit or a chain of &&, which the
// host compiler vectorises (compares and ORs 16 or 8 lanes at a time instead of
// one value per step; spectra are almost always finite, so an exit would not
// pay).
TESSERA_HD inline bool all_finite(const float* v, int n, std::int64_t stride = 1) {
  int bad = 0;
  for (int i = 0; i < n; ++i) bad |= int(!finite(v[std::int64_t(i) * stride]));
  return bad == 0;
}

// The index of the first NaN or infinity among v[0], ..., v[n-1], or n when
// there is none (host code): blocks of 1024 values are tested with all_finite,
// vectorised, and only a block that fails is searched value by value. A scan
// of every image of an xcorr batch, 10x faster than a loop that can exit at
// each value.
inline std::size_t first_nonfinite(const float* v, std::size_t n) {
  constexpr std::size_t block = 1024;
  for (std::size_t b = 0; b < n; b += block) {
    const std::size_t m = n - b < block ? n - b : block;
    if (all_finite(v + b, int(m))) continue;
    for (std::size_t i = b; i < b + m; ++i)
      if (!finite(v[i])) return i;
  }
  return n;
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

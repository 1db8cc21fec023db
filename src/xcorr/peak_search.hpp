// Internal to src/xcorr: the scans of the searched region that the
// normalisation (xcorr.cpp) and the peak search (peak_search.cpp) share.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "xcorr.hpp"

namespace tessera::xcorr::detail {

// The smallest (Less = std::less) or largest (std::greater) of v[0..n), n >= 1,
// 32 bytes of lanes at a time. Exact whatever the order: no NaN occurs here (R
// and the window sums come from finite pixels).
template <class T, class Better> T extreme_of(const T* v, int n, Better better) {
  constexpr int L = 32 / int(sizeof(T));
  typedef T vec __attribute__((vector_size(32)));
  T m = v[0];
  int i = 0;
  if (n >= L) {
    vec acc;
    std::memcpy(&acc, v, sizeof acc);
    for (i = L; i + L <= n; i += L) {
      vec x;
      std::memcpy(&x, v + i, sizeof x);
      acc = better(acc, x) ? acc : x;  // lane-wise select
    }
    for (int k = 0; k < L; ++k) m = better(m, acc[k]) ? m : acc[k];
  }
  for (; i < n; ++i) m = better(m, v[i]) ? m : v[i];
  return m;
}
inline double min_of(const double* v, int n) {
  return extreme_of(v, n, [](auto a, auto b) { return a < b; });
}
inline float max_of(const float* v, int n) {
  return extreme_of(v, n, [](auto a, auto b) { return a > b; });
}

// find_peak with the row maxima kept in `rowmax` (a workspace buffer). The scans
// stay here, vectorised; the parabola, the sharpness and the ratio are those of
// core/zncc_peak.hpp, which the GPU backend calls too
// (tests/xcorr/test_zncc_peak.cpp checks the bits).
// With have_rowmax, rowmax already holds the row maxima (normalise_region).
Peak find_peak_rows(const float* map, int stride, Region r, int exclusion, std::vector<float>& rowmax,
                    bool have_rowmax);

}  // namespace tessera::xcorr::detail

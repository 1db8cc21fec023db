// Internal to src/xcorr: the scans of the searched region that the
// normalisation (xcorr.cpp) and the peak search (peak_search.cpp) share.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/zncc_peak.hpp"
#include "xcorr.hpp"

namespace tessera::xcorr::detail {

// The best of v[0..n), n >= 1, by better(a, b) (a strict order: whether a beats
// b; it must also take GCC vectors of T), 32 bytes of lanes at a time. Whatever
// the order of the scan, the result ranks equal to the best value, so the scan
// takes the order that is fast: kAccumulators independent chains (the loop
// runs at the compares' throughput, not at the latency of one
// compare-and-select chain), the last partial vector as the last L values
// (some seen twice), and the lanes combined by butterfly shuffles.
template <class T, class Better> T extreme_of(const T* v, int n, Better better) {
  constexpr int L = 32 / int(sizeof(T)), kAccumulators = 4;
  typedef T vec __attribute__((vector_size(32)));
  typedef std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t> lane_index;
  typedef lane_index index_vec __attribute__((vector_size(32)));
  auto load = [v](int i) {
    vec x;
    std::memcpy(&x, v + i, sizeof x);
    return x;
  };
  auto pick = [better](auto a, auto b) { return better(a, b) ? a : b; };  // lane-wise for vec
  if (n < L) {
    T m = v[0];
    for (int i = 1; i < n; ++i) m = pick(m, v[i]);
    return m;
  }
  vec acc[kAccumulators];
  for (int k = 0; k < kAccumulators; ++k) acc[k] = load(0);
  int i = 0;
  for (; i + kAccumulators * L <= n; i += kAccumulators * L)
    for (int k = 0; k < kAccumulators; ++k) acc[k] = pick(acc[k], load(i + k * L));
  for (; i + L <= n; i += L) acc[0] = pick(acc[0], load(i));
  if (i < n) acc[0] = pick(acc[0], load(n - L));
  for (int k = 1; k < kAccumulators; ++k) acc[0] = pick(acc[0], acc[k]);
  for (int s = L / 2; s > 0; s /= 2) {
    index_vec partner;
    for (int k = 0; k < L; ++k) partner[k] = k ^ s;
    acc[0] = pick(acc[0], __builtin_shuffle(acc[0], partner));
  }
  return acc[0][0];
}
// The smallest window variance (never NaN: window sums of finite pixels).
inline double min_of(const double* v, int n) {
  return extreme_of(v, n, [](auto a, auto b) { return a < b; });
}
// A value of the highest rank of the peak search (core::zncc_ranks_above).
inline float max_of(const float* v, int n) {
  return extreme_of(v, n, [](auto a, auto b) { return core::zncc_ranks_above(a, b); });
}

// find_peak with the row maxima kept in `rowmax` (a workspace buffer). The scans
// stay here, vectorised; the order of values, the choice between candidates,
// the parabola, the sharpness and the ratio are those of core/zncc_peak.hpp,
// which the GPU backend calls too (tests/xcorr/test_zncc_peak.cpp checks the bits).
// With have_rowmax, rowmax already holds the row maxima (normalise_region).
Peak find_peak_rows(const float* map, int stride, Region r, int exclusion, std::vector<float>& rowmax,
                    bool have_rowmax);

// The candidates of --top K --min-distance D (through top_candidates,
// xcorr.hpp): the K highest local maxima of the searched region
// r of map (row stride `stride`), highest first, each more than min_distance
// placements (Chebyshev) from every higher one kept. A local maximum ranks at
// least as high as each of its (up to 8) neighbours inside r
// (core::zncc_ranks_above); among values of equal rank the first in row-major
// order comes first (core::zncc_best_combine's order). Fewer than K when there
// are fewer. The first is find_peak_rows's peak. 4 ns a placement (6.3 ms for
// a 1279^2 map of noise, half a pair's correlation on one core here; 12 ns
// with a branch per neighbour): the mask of local maxima without branches,
// then only the best K (2D+1)^2 candidates ordered.
std::vector<core::ZnccBest> top_peaks(const float* map, int stride, Region r, int k, int min_distance);

}  // namespace tessera::xcorr::detail

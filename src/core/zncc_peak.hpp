// The peak of a ZNCC map over a searched region and its quality, written once
// for the CPU backend (src/xcorr) and the GPU backend (cuda/xcorr_cuda.cu):
// the order of candidate values, the argmax combine step (any order of
// combination gives the first maximum in row-major order, so a parallel
// reduction is deterministic), the sub-placement parabola, the sharpness, the
// exclusion test and the peak ratio. Semantics: xcorr::Peak in
// src/xcorr/xcorr.hpp.
#pragma once

#include <limits.h>
#include <math.h>

#include "hd.hpp"

namespace tessera::core {

// Rows [y0, y1] and columns [x0, x1] of the full map, inclusive.
struct ZnccRegion {
  int y0, y1, x0, x1;
};

// A row-major map with a row stride (the map itself or the padded FFT buffer).
struct ZnccMapView {
  const float* data;
  long long stride;
  TESSERA_HD float operator()(int y, int x) const { return data[(long long)y * stride + x]; }
};

// A candidate peak: its value and full-map coordinates.
struct ZnccBest {
  float value;
  int y, x;
};

// Whether value a ranks above value b in the search for the peak: the larger
// number, and NaN above every number, so that a NaN R (a fault: R of finite
// inputs never is one) becomes the peak instead of hiding behind a plausible
// one. +0 and -0 rank equal, and so do all NaNs. For float and for GCC vectors
// of floats (a lane-wise mask), so that the CPU's vectorised scans
// (src/xcorr/peak_search.hpp) use this rule too. Written as "a is not <= b
// (true if either is NaN), and b is not NaN": in a scan whose running best is
// a, the NaN test of the new value b stays off the chain of dependent steps.
template <class V> TESSERA_HD inline auto zncc_ranks_above(V a, V b) {
  return (!(a <= b)) & (b == b);
}

// The identity of zncc_best_combine: loses to every other value.
TESSERA_HD inline ZnccBest zncc_best_none() { return {-HUGE_VALF, INT_MAX, INT_MAX}; }

// The better of two candidates: the one whose value ranks above
// (zncc_ranks_above); between values of equal rank, the first in row-major
// order. A selection by a total order on (rank, row-major index), so it is
// associative and commutative: any reduction tree, and the row-major scan
// zncc_row_best, give the same candidate with the same bits.
TESSERA_HD inline ZnccBest zncc_best_combine(ZnccBest a, ZnccBest b) {
  if (zncc_ranks_above(a.value, b.value)) return a;
  if (zncc_ranks_above(b.value, a.value)) return b;
  return (a.y < b.y || (a.y == b.y && a.x <= b.x)) ? a : b;
}

// The first maximum of map row y over columns [x0, x1]: row[x] is R at (y, x).
TESSERA_HD inline ZnccBest zncc_row_best(const float* row, int y, int x0, int x1) {
  ZnccBest b = zncc_best_none();
  for (int x = x0; x <= x1; ++x) b = zncc_best_combine(b, ZnccBest{row[x], y, x});
  return b;
}

// The running maximum of the second-best search: v replaces m when it ranks
// above; between equal ranks m is kept (std::max(m, v) for numbers).
TESSERA_HD inline float zncc_max(float m, float v) { return zncc_ranks_above(v, m) ? v : m; }

// Whether placement (y, x) lies within Chebyshev distance `exclusion` of the
// peak, so the second-best search skips it.
TESSERA_HD inline bool zncc_excluded(int y, int x, ZnccBest peak, int exclusion) {
  return y >= peak.y - exclusion && y <= peak.y + exclusion && x >= peak.x - exclusion &&
         x <= peak.x + exclusion;
}

// Vertex of the parabola through (-1, a), (0, b), (1, c), clamped to
// [-0.5, 0.5]; 0 when it is not concave.
TESSERA_HD inline double zncc_vertex(double a, double b, double c) {
  const double curv = a - 2.0 * b + c;
  if (!(curv < 0)) return 0.0;
  const double d = 0.5 * (a - c) / curv;
  return d < -0.5 ? -0.5 : (0.5 < d ? 0.5 : d);  // std::clamp(d, -0.5, 0.5)
}

// Sub-placement position and sharpness of the peak p of map m over region r.
struct ZnccPeakShape {
  double sub_y, sub_x;
  float sharpness;
};
TESSERA_HD inline ZnccPeakShape zncc_peak_shape(ZnccMapView m, ZnccRegion r, ZnccBest p) {
  ZnccPeakShape s{double(p.y), double(p.x), 0.0f};
  if (p.y > r.y0 && p.y < r.y1) s.sub_y += zncc_vertex(m(p.y - 1, p.x), p.value, m(p.y + 1, p.x));
  if (p.x > r.x0 && p.x < r.x1) s.sub_x += zncc_vertex(m(p.y, p.x - 1), p.value, m(p.y, p.x + 1));
  double nsum = 0;
  int n = 0;
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      const int y = p.y + dy, x = p.x + dx;
      if ((dy == 0 && dx == 0) || y < r.y0 || y > r.y1 || x < r.x0 || x > r.x1) continue;
      nsum += m(y, x);
      ++n;
    }
  s.sharpness = n > 0 ? float(double(p.value) - nsum / n) : 0.0f;
  return s;
}

// The peak over the second-best value (-inf when there is none); +inf when
// that value is <= 0.
TESSERA_HD inline float zncc_peak_ratio(float value, float second) {
  return second > 0.0f ? value / second : HUGE_VALF;
}

}  // namespace tessera::core

#include "peak_search.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "core/zncc_peak.hpp"

namespace tessera::xcorr {
namespace detail {
namespace {

// The first maximum of region r in row-major order, core::zncc_best_combine
// folded over the rows (each represented by its maximum: which of its columns
// does not matter between rows), then core::zncc_row_best on the winning row.
core::ZnccBest first_maximum(const float* map, int stride, Region r, const std::vector<float>& rowmax) {
  core::ZnccBest row = core::zncc_best_none();
  for (int y = r.y0; y <= r.y1; ++y)
    row = core::zncc_best_combine(row, core::ZnccBest{rowmax[std::size_t(y - r.y0)], y, r.x0});
  return core::zncc_row_best(map + std::size_t(row.y) * std::size_t(stride), row.y, r.x0, r.x1);
}

}  // namespace

Peak find_peak_rows(const float* map, int stride, Region r, int exclusion, std::vector<float>& rowmax,
                    bool have_rowmax) {
  const std::size_t px = std::size_t(stride);
  const int nx = r.x1 - r.x0 + 1;
  if (!have_rowmax) {
    rowmax.resize(std::size_t(r.y1 - r.y0 + 1));
    for (int y = r.y0; y <= r.y1; ++y)
      rowmax[std::size_t(y - r.y0)] = max_of(map + std::size_t(y) * px + r.x0, nx);
  }
  const core::ZnccBest best = first_maximum(map, stride, r, rowmax);
  Peak p{best.y, best.x, best.value, 0, 0, 0, 0};
  const core::ZnccPeakShape shape =
      core::zncc_peak_shape(core::ZnccMapView{map, (long long)stride}, core::ZnccRegion{r.y0, r.y1, r.x0, r.x1}, best);
  p.sub_y = shape.sub_y;
  p.sub_x = shape.sub_x;
  p.sharpness = shape.sharpness;
  // Second best: the row maxima of the rows outside the exclusion band, and
  // within the band the columns outside it (core::zncc_excluded, as row segments).
  float second = -std::numeric_limits<float>::infinity();
  auto take = [&second](float v) { second = core::zncc_max(second, v); };
  const int ey0 = p.y - exclusion, ey1 = p.y + exclusion;
  const int ex0 = p.x - exclusion, ex1 = p.x + exclusion;
  for (int y = r.y0; y <= r.y1; ++y) {
    if (y < ey0 || y > ey1) {
      take(rowmax[std::size_t(y - r.y0)]);
      continue;
    }
    const float* row = map + std::size_t(y) * px;
    const int left_end = std::min(r.x1, ex0 - 1), right_begin = std::max(r.x0, ex1 + 1);
    if (left_end >= r.x0) take(max_of(row + r.x0, left_end - r.x0 + 1));
    if (right_begin <= r.x1) take(max_of(row + right_begin, r.x1 - right_begin + 1));
  }
  p.peak_ratio = core::zncc_peak_ratio(p.value, second);
  return p;
}


}  // namespace detail

Peak find_peak(const float* map, int stride, Region r, int exclusion) {
  std::vector<float> rowmax;
  return detail::find_peak_rows(map, stride, r, exclusion, rowmax, false);
}

namespace detail {

std::vector<core::ZnccBest> top_peaks(const float* map, int stride, Region r, int k, int min_distance) {
  std::vector<core::ZnccBest> kept;
  if (k <= 0 || r.y1 < r.y0 || r.x1 < r.x0) return kept;
  auto at = [map, stride](int y, int x) { return map[std::size_t(y) * std::size_t(stride) + std::size_t(x)]; };
  std::vector<core::ZnccBest> cand;
  for (int y = r.y0; y <= r.y1; ++y)
    for (int x = r.x0; x <= r.x1; ++x) {
      const float v = at(y, x);
      bool local = true;
      for (int dy = -1; dy <= 1 && local; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int ny = y + dy, nx = x + dx;
          if ((dy == 0 && dx == 0) || ny < r.y0 || ny > r.y1 || nx < r.x0 || nx > r.x1) continue;
          if (core::zncc_ranks_above(at(ny, nx), v)) {
            local = false;
            break;
          }
        }
      if (local) cand.push_back({v, y, x});
    }
  // A total order: core::zncc_best_combine's (rank, then row-major).
  auto before = [](const core::ZnccBest& a, const core::ZnccBest& b) {
    const core::ZnccBest w = core::zncc_best_combine(a, b);
    return w.y == a.y && w.x == a.x && !(a.y == b.y && a.x == b.x);
  };
  // Each kept candidate rules out at most (2D+1)^2 - 1 others, so the best
  // k (2D+1)^2 candidates hold the answer whenever there are that many.
  const double side = 2.0 * double(std::max(0, min_distance)) + 1.0;
  const std::size_t need = std::size_t(std::min(double(cand.size()), double(k) * side * side));
  std::partial_sort(cand.begin(), cand.begin() + std::ptrdiff_t(need), cand.end(), before);
  for (std::size_t i = 0; i < need && int(kept.size()) < k; ++i) {
    bool far = true;
    for (const core::ZnccBest& q : kept)
      if (std::max(std::abs(q.y - cand[i].y), std::abs(q.x - cand[i].x)) <= min_distance) {
        far = false;
        break;
      }
    if (far) kept.push_back(cand[i]);
  }
  return kept;
}

}  // namespace detail

}  // namespace tessera::xcorr

#include "peak_search.hpp"

#include <algorithm>
#include <cstdint>
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

core::ZnccBest missing_top_peak() { return {std::numeric_limits<float>::quiet_NaN(), -1, -1}; }

void top_candidates(const float* map, int stride, Region r, int min_distance, std::span<core::ZnccBest> top) {
  const std::vector<core::ZnccBest> found = detail::top_peaks(map, stride, r, int(top.size()), min_distance);
  std::copy(found.begin(), found.end(), top.begin());
  std::fill(top.begin() + std::ptrdiff_t(found.size()), top.end(), missing_top_peak());
}

namespace detail {

std::vector<core::ZnccBest> top_peaks(const float* map, int stride, Region r, int k, int min_distance) {
  std::vector<core::ZnccBest> kept;
  if (k <= 0 || r.y1 < r.y0 || r.x1 < r.x0) return kept;
  auto row_of = [map, stride](int y) { return map + std::size_t(y) * std::size_t(stride); };
  auto above = [](float a, float b) { return bool(core::zncc_ranks_above(a, b)); };
  // Per row, a mask of the local maxima computed without branches (the loop
  // over the interior columns vectorises): a missing neighbour row is the row
  // itself, and a missing neighbour column the placement itself, which never
  // ranks above it.
  const int nx = r.x1 - r.x0 + 1;
  std::vector<std::uint8_t> is_max(static_cast<std::size_t>(nx));
  std::vector<core::ZnccBest> cand;
  for (int y = r.y0; y <= r.y1; ++y) {
    const float* c = row_of(y) + r.x0;
    const float* u = (y > r.y0 ? row_of(y - 1) : row_of(y)) + r.x0;
    const float* d = (y < r.y1 ? row_of(y + 1) : row_of(y)) + r.x0;
    auto local = [&](int i, int l, int h) {
      const float v = c[i];
      return std::uint8_t(!above(c[l], v) & !above(c[h], v) & !above(u[l], v) & !above(u[i], v) &
                          !above(u[h], v) & !above(d[l], v) & !above(d[i], v) & !above(d[h], v));
    };
    for (int i = 1; i + 1 < nx; ++i) is_max[std::size_t(i)] = local(i, i - 1, i + 1);
    is_max[0] = local(0, 0, nx > 1 ? 1 : 0);
    if (nx > 1) is_max[std::size_t(nx - 1)] = local(nx - 1, nx - 2, nx - 1);
    for (int i = 0; i < nx; ++i)
      if (is_max[std::size_t(i)]) cand.push_back({c[i], y, r.x0 + i});
  }
  // A total order: core::zncc_best_combine's (rank, then row-major).
  auto before = [above](const core::ZnccBest& a, const core::ZnccBest& b) {
    if (above(a.value, b.value)) return true;
    if (above(b.value, a.value)) return false;
    return a.y < b.y || (a.y == b.y && a.x < b.x);
  };
  // Each kept candidate rules out at most (2D+1)^2 - 1 others, so the best
  // k (2D+1)^2 candidates hold the answer whenever there are that many.
  const double side = 2.0 * double(std::max(0, min_distance)) + 1.0;
  const std::size_t need = std::size_t(std::min(double(cand.size()), double(k) * side * side));
  // The best `need` first (linear time), then in order.
  if (need < cand.size()) std::nth_element(cand.begin(), cand.begin() + std::ptrdiff_t(need), cand.end(), before);
  std::sort(cand.begin(), cand.begin() + std::ptrdiff_t(need), before);
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

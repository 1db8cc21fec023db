#include "peak_search.hpp"

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

}  // namespace tessera::xcorr

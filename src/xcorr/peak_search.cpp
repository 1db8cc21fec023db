#include "peak_search.hpp"

#include <limits>

#include "core/zncc_peak.hpp"

namespace tessera::xcorr {
namespace detail {

Peak find_peak_rows(const float* map, int stride, Region r, int exclusion, std::vector<float>& rowmax,
                    bool have_rowmax) {
  const std::size_t px = std::size_t(stride);
  auto at = [map, px](int y, int x) { return map[std::size_t(y) * px + x]; };
  const int nx = r.x1 - r.x0 + 1;
  if (!have_rowmax) {
    rowmax.resize(std::size_t(r.y1 - r.y0 + 1));
    for (int y = r.y0; y <= r.y1; ++y)
      rowmax[std::size_t(y - r.y0)] = max_of(map + std::size_t(y) * px + r.x0, nx);
  }
  // The first row holding the largest value, then its first column holding it:
  // the first maximum in row-major order (the rule of core::zncc_best_combine).
  int by = r.y0;
  for (int y = r.y0 + 1; y <= r.y1; ++y)
    if (rowmax[std::size_t(y - r.y0)] > rowmax[std::size_t(by - r.y0)]) by = y;
  Peak p{by, r.x0, rowmax[std::size_t(by - r.y0)], 0, 0, 0, 0};
  while (at(by, p.x) != p.value) ++p.x;
  p.value = at(by, p.x);  // its own bits (+0 and -0 compare equal)
  const core::ZnccBest best{p.value, p.y, p.x};
  const core::ZnccPeakShape shape =
      core::zncc_peak_shape(core::ZnccMapView{map, (long long)stride}, core::ZnccRegion{r.y0, r.y1, r.x0, r.x1}, best);
  p.sub_y = shape.sub_y;
  p.sub_x = shape.sub_x;
  p.sharpness = shape.sharpness;
  // Second best: the row maxima of the rows outside the exclusion band, and
  // within the band the columns outside it (core::zncc_excluded, as row segments).
  float second = -std::numeric_limits<float>::infinity();
  const int ey0 = p.y - exclusion, ey1 = p.y + exclusion;
  const int ex0 = p.x - exclusion, ex1 = p.x + exclusion;
  for (int y = r.y0; y <= r.y1; ++y) {
    if (y < ey0 || y > ey1) {
      second = std::max(second, rowmax[std::size_t(y - r.y0)]);
      continue;
    }
    const float* row = map + std::size_t(y) * px;
    const int left_end = std::min(r.x1, ex0 - 1), right_begin = std::max(r.x0, ex1 + 1);
    if (left_end >= r.x0) second = std::max(second, max_of(row + r.x0, left_end - r.x0 + 1));
    if (right_begin <= r.x1) second = std::max(second, max_of(row + right_begin, r.x1 - right_begin + 1));
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

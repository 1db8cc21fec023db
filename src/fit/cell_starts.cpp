#include "cell_starts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "core/fit_input.hpp"
#include "guess.hpp"

namespace tessera::fit {
namespace {

constexpr std::int64_t kMinCellSide = 8;   // 64 pixels: the cell mean's noise 8x below a pixel's
constexpr std::int64_t kMaxCellsASide = 16;
// A fit is clearly worse than its row neighbours' when its chi-square exceeds
// their median by kWorseSigmas times the relative scatter of a chi-square of
// n - P degrees of freedom, sqrt(2 / (n - P)) (15 % for 100 points and 7
// parameters): equal fits exceed that about once in 10^4 (measured on
// simulated cubes: the tail is heavier than a Gaussian's).
constexpr double kWorseSigmas = 4.5;
constexpr int kRowReach = 2;  // row neighbours compared: c-2 .. c+2; tried: c-1, c+1

bool usable(std::int32_t state) { return state <= int(FitState::iteration_limit); }

bool all_finite(const double* p, int P) {
  return std::all_of(p, p + P, [](double v) { return std::isfinite(v); });
}

// The cells of ring k around the centre (Chebyshev distance k), row-major.
std::vector<std::pair<int, int>> ring(const CellGrid& g, int ci, int cj, int k) {
  std::vector<std::pair<int, int>> cells;
  for (int i = std::max(0, ci - k); i <= std::min(g.ky - 1, ci + k); ++i)
    for (int j = std::max(0, cj - k); j <= std::min(g.kx - 1, cj + k); ++j)
      if (std::max(std::abs(i - ci), std::abs(j - cj)) == k) cells.emplace_back(i, j);
  return cells;
}

}  // namespace

CellGrid single_cell(std::int64_t ny, std::int64_t nx) {
  CellGrid g;
  g.ny = ny;
  g.nx = nx;
  g.rows = std::max<std::int64_t>(1, ny);
  g.cols = std::max<std::int64_t>(1, nx);
  return g;
}

CellGrid cell_grid(std::int64_t ny, std::int64_t nx) {
  const std::int64_t big = std::max(ny, nx);
  const std::int64_t side = std::max(kMinCellSide, (big + kMaxCellsASide - 1) / kMaxCellsASide);
  CellGrid g;
  g.ny = ny;
  g.nx = nx;
  g.rows = g.cols = side;
  g.ky = int(std::max<std::int64_t>(1, (ny + side - 1) / side));
  g.kx = int(std::max<std::int64_t>(1, (nx + side - 1) / side));
  return g;
}

void band_sums(const float* y, std::int64_t rows, const CellGrid& g, int n_points, double* sum,
               std::int64_t* count) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (int b = 0; b < g.kx; ++b) {
      double* s = sum + (std::size_t(r) * g.kx + std::size_t(b)) * std::size_t(n_points);
      std::int64_t& k = count[std::size_t(r) * g.kx + std::size_t(b)];
      std::fill_n(s, n_points, 0.0);
      k = 0;
      const std::int64_t c1 = std::min(g.nx, (b + 1) * g.cols);
      for (std::int64_t c = b * g.cols; c < c1; ++c) {
        const float* v = y + (r * g.nx + c) * n_points;
        if (!core::all_finite(v, n_points)) continue;
        for (int i = 0; i < n_points; ++i) s[i] += v[i];
        ++k;
      }
    }
}

std::vector<float> image_mean(std::span<const double> sum, std::span<const std::int64_t> count,
                              const CellGrid& g, int n_points) {
  const std::size_t per_row = std::size_t(g.kx) * std::size_t(n_points);
  if (sum.size() != std::size_t(g.ny) * per_row || count.size() != std::size_t(g.ny) * std::size_t(g.kx))
    throw std::invalid_argument("image_mean: the sums must hold every row's bands");
  std::vector<double> acc(std::size_t(n_points), 0.0);
  std::int64_t total = 0;
  std::vector<double> row(static_cast<std::size_t>(n_points));
  for (std::int64_t r = 0; r < g.ny; ++r) {
    std::fill(row.begin(), row.end(), 0.0);
    for (int b = 0; b < g.kx; ++b)
      for (int i = 0; i < n_points; ++i) row[std::size_t(i)] += sum[std::size_t(r) * per_row + std::size_t(b) * n_points + i];
    for (int i = 0; i < n_points; ++i) acc[std::size_t(i)] += row[std::size_t(i)];
    for (int b = 0; b < g.kx; ++b) total += count[std::size_t(r) * g.kx + std::size_t(b)];
  }
  std::vector<float> mean(std::size_t(n_points), std::numeric_limits<float>::quiet_NaN());
  if (total > 0)
    for (int i = 0; i < n_points; ++i) mean[std::size_t(i)] = float(acc[std::size_t(i)] / double(total));
  return mean;
}

std::vector<float> cell_means(std::span<const double> sum, std::span<const std::int64_t> count,
                              const CellGrid& g, int n_points) {
  const std::size_t per_row = std::size_t(g.kx) * std::size_t(n_points);
  if (sum.size() != std::size_t(g.ny) * per_row || count.size() != std::size_t(g.ny) * std::size_t(g.kx))
    throw std::invalid_argument("cell_means: the sums must hold every row's bands");
  std::vector<float> means(std::size_t(g.ky) * per_row, std::numeric_limits<float>::quiet_NaN());
  std::vector<double> acc(static_cast<std::size_t>(n_points));
  for (int i = 0; i < g.ky; ++i)
    for (int b = 0; b < g.kx; ++b) {
      std::fill(acc.begin(), acc.end(), 0.0);
      std::int64_t total = 0;
      const std::int64_t r1 = std::min(g.ny, (i + 1) * g.rows);
      for (std::int64_t r = i * g.rows; r < r1; ++r) {
        const double* s = sum.data() + std::size_t(r) * per_row + std::size_t(b) * n_points;
        for (int k = 0; k < n_points; ++k) acc[std::size_t(k)] += s[k];
        total += count[std::size_t(r) * g.kx + std::size_t(b)];
      }
      if (total == 0) continue;
      float* m = means.data() + std::size_t(i) * per_row + std::size_t(b) * n_points;
      for (int k = 0; k < n_points; ++k) m[k] = float(acc[std::size_t(k)] / double(total));
    }
  return means;
}

CellFits fit_cells(const ModelSpec& spec, std::span<const float> x, std::span<const float> means,
                   const CellGrid& grid, std::span<const double> global, const FitOptions& options,
                   std::span<const double> fixed) {
  const int P = spec.n_params(), n = int(x.size());
  if (int(global.size()) != P) throw std::invalid_argument("fit_cells: global must hold one value per parameter");
  if (means.size() != std::size_t(grid.ky) * grid.kx * std::size_t(n))
    throw std::invalid_argument("fit_cells: one mean spectrum per cell expected");
  CellFits cells;
  cells.grid = grid;
  cells.n_params = P;
  cells.ok.assign(std::size_t(grid.ky) * grid.kx, 0);
  cells.params.resize(cells.ok.size() * std::size_t(P));
  for (std::size_t c = 0; c < cells.ok.size(); ++c) std::copy(global.begin(), global.end(), cells.params.begin() + std::ptrdiff_t(c * P));
  FitOptions o = options;
  o.estimator = Estimator::lse;
  o.progress = nullptr;
  o.covariance = false;

  const int ci = grid.ky / 2, cj = grid.kx / 2;
  const int rings = std::max({ci, grid.ky - 1 - ci, cj, grid.kx - 1 - cj});
  for (int k = 0; k <= rings; ++k) {
    // Every cell of the ring from the global fit and from each inner
    // neighbour already fitted: one batch for the ring.
    std::vector<float> y, start;
    std::vector<int> owner;
    const auto ring_cells = ring(grid, ci, cj, k);
    for (const auto& [i, j] : ring_cells) {
      const float* m = means.data() + (std::size_t(i) * grid.kx + std::size_t(j)) * std::size_t(n);
      if (!core::all_finite(m, n)) continue;
      auto add = [&](const double* p) {
        std::vector<double> q(p, p + P);
        constrain_start(o, fixed, q.data(), P);
        y.insert(y.end(), m, m + n);
        for (double v : q) start.push_back(float(v));
        owner.push_back(i * grid.kx + j);
      };
      add(global.data());
      for (int di = -1; di <= 1; ++di)
        for (int dj = -1; dj <= 1; ++dj) {
          const int a = i + di, b = j + dj;
          if (a < 0 || b < 0 || a >= grid.ky || b >= grid.kx || (di == 0 && dj == 0)) continue;
          if (std::max(std::abs(a - ci), std::abs(b - cj)) < k && cells.fitted(a, b)) add(cells.at(a, b));
        }
    }
    if (owner.empty()) continue;
    const FitBatch batch{x, y.data(), nullptr, nullptr, start.data(), std::int64_t(owner.size())};
    const FitResults r = fit_batch(spec, batch, o);
    std::vector<float> best(cells.ok.size(), std::numeric_limits<float>::infinity());
    for (std::size_t t = 0; t < owner.size(); ++t) {
      const float* p = r.params.data() + t * std::size_t(P);
      std::vector<double> q(p, p + P);
      if (!usable(r.state[t]) || !all_finite(q.data(), P) || !(r.chi2[t] < best[std::size_t(owner[t])])) continue;
      best[std::size_t(owner[t])] = r.chi2[t];
      normalise_start(spec, q.data());
      constrain_start(o, fixed, q.data(), P);
      std::copy(q.begin(), q.end(), cells.params.begin() + std::ptrdiff_t(std::size_t(owner[t]) * P));
      cells.ok[std::size_t(owner[t])] = 1;
    }
  }
  return cells;
}

namespace {

// The cells i0, i1 whose centres bracket coordinate v along one axis and the
// weight of i1 (cells of `side` pixels over `size`). Between the outer cells'
// centres and the border (half a cell) the two outer cells extrapolate, so a
// gradient is followed to the edge.
struct Bracket {
  int i0, i1;
  double t;
};
Bracket bracket(std::int64_t v, std::int64_t side, std::int64_t size, int cells) {
  if (cells == 1) return {0, 0, 0.0};
  auto centre = [&](int i) { return 0.5 * double(i * side + std::min(size, (i + 1) * side) - 1); };
  const int i = int(v / side);
  const int i0 = std::clamp(double(v) >= centre(i) ? i : i - 1, 0, cells - 2);
  return {i0, i0 + 1, (double(v) - centre(i0)) / (centre(i0 + 1) - centre(i0))};
}

}  // namespace

std::vector<float> starts_from_cells(const CellFits& cells, std::int64_t row0, std::int64_t rows,
                                     const FitOptions& options) {
  const CellGrid& g = cells.grid;
  const int P = cells.n_params;
  std::vector<float> start(std::size_t(rows * g.nx) * std::size_t(P));
  for (std::int64_t r = 0; r < rows; ++r) {
    const Bracket a = bracket(row0 + r, g.rows, g.ny, g.ky);
    for (std::int64_t c = 0; c < g.nx; ++c) {
      const Bracket b = bracket(c, g.cols, g.nx, g.kx);
      float* s = start.data() + std::size_t(r * g.nx + c) * std::size_t(P);
      if (!(cells.fitted(a.i0, b.i0) && cells.fitted(a.i0, b.i1) && cells.fitted(a.i1, b.i0) &&
            cells.fitted(a.i1, b.i1))) {
        const double* p = cells.at(g.cell_row(row0 + r), g.cell_col(c));
        for (int j = 0; j < P; ++j) s[j] = float(p[j]);
        continue;
      }
      const double* p00 = cells.at(a.i0, b.i0);
      const double* p01 = cells.at(a.i0, b.i1);
      const double* p10 = cells.at(a.i1, b.i0);
      const double* p11 = cells.at(a.i1, b.i1);
      for (int j = 0; j < P; ++j) {
        double v = (1 - a.t) * ((1 - b.t) * p00[j] + b.t * p01[j]) + a.t * ((1 - b.t) * p10[j] + b.t * p11[j]);
        if (!options.constraints.empty())  // extrapolated values may leave the bounds
          v = std::min(std::max(v, options.constraints[std::size_t(j)].lo), options.constraints[std::size_t(j)].hi);
        s[j] = float(v);
      }
    }
  }
  return start;
}

namespace {

// Whether pixel c of a row (results from `at`, its spectrum y) is clearly
// worse than its row neighbours: failed beside a usable neighbour, or a
// chi-square over `factor` times their median.
bool worse_than_neighbours(const FitResults& res, std::size_t at, std::int64_t c, std::int64_t nx, double factor,
                           const float* y, int n) {
  const std::int32_t s = res.state[at + std::size_t(c)];
  if (s == int(FitState::nonfinite_input) || s == int(FitState::masked)) return false;
  // A failed fit of a flat spectrum (a saturated pixel) has no line for any start to find.
  if (!usable(s) && std::all_of(y, y + n, [&](float v) { return v == y[0]; })) return false;
  double chi2[2 * kRowReach];
  int k = 0;
  for (std::int64_t q = std::max<std::int64_t>(0, c - kRowReach); q <= std::min(nx - 1, c + kRowReach); ++q)
    if (q != c && usable(res.state[at + std::size_t(q)]) && std::isfinite(res.chi2[at + std::size_t(q)]))
      chi2[k++] = res.chi2[at + std::size_t(q)];
  if (k == 0) return false;
  if (!usable(s)) return true;
  for (int a = 1; a < k; ++a)  // insertion sort of at most 2 * kRowReach values
    for (int b = a; b > 0 && chi2[b] < chi2[b - 1]; --b) std::swap(chi2[b], chi2[b - 1]);
  const double median = k % 2 ? chi2[k / 2] : 0.5 * (chi2[k / 2 - 1] + chi2[k / 2]);
  return res.chi2[at + std::size_t(c)] > factor * median;
}

// The fit `b` of refits is better than the current one of pixel p.
bool better(const FitResults& refits, std::size_t b, const FitResults& res, std::size_t p) {
  if (!usable(refits.state[b]) || !std::isfinite(refits.chi2[b])) return false;
  if (!usable(res.state[p])) return true;
  return refits.chi2[b] < res.chi2[p];
}

void take(const FitResults& from, std::size_t b, FitResults& to, std::size_t p) {
  const std::size_t P = std::size_t(from.n_params);
  std::copy_n(from.params.begin() + std::ptrdiff_t(b * P), P, to.params.begin() + std::ptrdiff_t(p * P));
  std::copy_n(from.sigma.begin() + std::ptrdiff_t(b * P), P, to.sigma.begin() + std::ptrdiff_t(p * P));
  if (!to.covariance.empty()) {
    const std::size_t T = P * (P + 1) / 2;
    std::copy_n(from.covariance.begin() + std::ptrdiff_t(b * T), T, to.covariance.begin() + std::ptrdiff_t(p * T));
  }
  to.chi2[p] = from.chi2[b];
  to.state[p] = from.state[b];
  to.iterations[p] = from.iterations[b];
}

}  // namespace

std::int64_t rescue_worse_than_neighbours(const CellFits& cells, std::int64_t row0, std::int64_t rows,
                                          const FitBatch& batch,
                                          const std::function<FitResults(const FitBatch&)>& fit,
                                          FitResults& res, const StartSearch& search) {
  const CellGrid& g = cells.grid;
  const int P = cells.n_params, n = int(batch.x.size());
  if (batch.n_pix != rows * g.nx) throw std::invalid_argument("rescue_worse_than_neighbours: whole rows expected");
  // Decided from the first fits only, so the outcome does not depend on the order.
  const double factor = 1 + kWorseSigmas * std::sqrt(2.0 / std::max(1, n - P));
  std::vector<std::uint8_t> bad(std::size_t(batch.n_pix), 0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < g.nx; ++c)
      bad[std::size_t(r * g.nx + c)] =
          worse_than_neighbours(res, std::size_t(r * g.nx), c, g.nx, factor, batch.y + (r * g.nx + c) * n, n);
  // The model's own search on the bad pixels' spectra, when it has one.
  std::vector<float> searched;
  if (search) {
    std::vector<float> ys;
    for (std::int64_t p = 0; p < batch.n_pix; ++p)
      if (bad[std::size_t(p)]) ys.insert(ys.end(), batch.y + p * n, batch.y + (p + 1) * n);
    if (!ys.empty()) searched = search(ys.data(), std::int64_t(ys.size()) / n);
  }
  std::size_t n_searched = 0;
  std::vector<float> y, weights, start;
  std::vector<std::int64_t> owner;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < g.nx; ++c) {
      const std::int64_t p = r * g.nx + c;
      if (!bad[std::size_t(p)]) continue;
      const float* yp = batch.y + p * n;
      auto add = [&](const float* s) {
        y.insert(y.end(), yp, yp + n);
        if (batch.weights) weights.insert(weights.end(), batch.weights + p * n, batch.weights + (p + 1) * n);
        start.insert(start.end(), s, s + P);
        owner.push_back(p);
      };
      // A failed fit (a dead pixel, mostly) gets only the search when there is one.
      const bool failed = !usable(res.state[std::size_t(p)]);
      if (!failed || searched.empty())
        for (std::int64_t q : {c - 1, c + 1}) {
          const std::size_t k = std::size_t(r * g.nx + q);
          if (q >= 0 && q < g.nx && !bad[k] && usable(res.state[k])) add(res.params.data() + k * std::size_t(P));
        }
      // The pixel's own cell; without a search, the cells beside it too.
      const int i = g.cell_row(row0 + r), j = g.cell_col(c);
      const int beside[5][2] = {{i, j}, {i - 1, j}, {i + 1, j}, {i, j - 1}, {i, j + 1}};
      for (int m = 0; m < (searched.empty() ? 5 : failed ? 0 : 1); ++m) {
        const auto [a, b] = beside[m];
        if (a >= 0 && b >= 0 && a < g.ky && b < g.kx && cells.fitted(a, b)) {
          std::vector<float> s(cells.at(a, b), cells.at(a, b) + P);
          add(s.data());
        }
      }
      if (!searched.empty()) add(searched.data() + n_searched++ * std::size_t(P));
    }
  if (owner.empty()) return 0;
  const FitBatch again{batch.x, y.data(), batch.weights ? weights.data() : nullptr, nullptr, start.data(),
                       std::int64_t(owner.size())};
  const FitResults refits = fit(again);
  std::int64_t refitted = 0;
  for (std::size_t t = 0; t < owner.size(); ++t) {
    refitted += t == 0 || owner[t] != owner[t - 1];
    if (better(refits, t, res, std::size_t(owner[t]))) take(refits, t, res, std::size_t(owner[t]));
  }
  return refitted;
}

}  // namespace tessera::fit

// The coarse-to-fine starts of fit/cell_starts.hpp: the band sums and the
// means they give, the cells' fits following a line across the image, and the
// refit of pixels worse than their row neighbours; and bin_spectra, which
// gives them (and the fits) their spectra.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "fit/cell_starts.hpp"
#include "fit/cube.hpp"
#include "fit/guess.hpp"

namespace fit = tessera::fit;

namespace {

// A cube [pixel][n] of random spectra, some pixels non-finite.
std::vector<float> random_cube(std::int64_t ny, std::int64_t nx, int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-3, 5);
  std::vector<float> y(std::size_t(ny * nx * n));
  for (float& v : y) v = u(rng);
  for (std::int64_t p = 0; p < ny * nx; p += 7) y[std::size_t(p * n + 1)] = std::numeric_limits<float>::quiet_NaN();
  return y;
}

TEST(CellStarts, GridsCoverTheImage) {
  const fit::CellGrid g = fit::cell_grid(100, 37);
  EXPECT_EQ(g.rows, 8);
  EXPECT_EQ(g.ky, 13);
  EXPECT_EQ(g.kx, 5);
  EXPECT_EQ(g.cell_row(99), 12);
  EXPECT_EQ(g.cell_col(36), 4);
  const fit::CellGrid big = fit::cell_grid(2048, 2000);
  EXPECT_EQ(big.rows, 128);  // at most 16 cells a side
  EXPECT_EQ(big.ky, 16);
  EXPECT_EQ(big.kx, 16);
  const fit::CellGrid one = fit::single_cell(5, 9);
  EXPECT_TRUE(one.single());
  EXPECT_EQ(one.cell_col(8), 0);
}

TEST(CellStarts, MeansFromBandSumsAreTheMeansOfTheCells) {
  const std::int64_t ny = 19, nx = 21;
  const int n = 5;
  const auto y = random_cube(ny, nx, n, 3);
  const fit::CellGrid g = fit::cell_grid(ny, nx);  // 8 x 8 cells, the last ones smaller
  std::vector<double> sum(std::size_t(ny * g.kx * n));
  std::vector<std::int64_t> count(std::size_t(ny * g.kx));
  // Summed in two blocks of rows, as two ranks would.
  fit::band_sums(y.data(), 11, g, n, sum.data(), count.data());
  fit::band_sums(y.data() + 11 * nx * n, ny - 11, g, n, sum.data() + 11 * g.kx * n, count.data() + 11 * g.kx);
  const auto means = fit::cell_means(sum, count, g, n);
  for (int i = 0; i < g.ky; ++i)
    for (int j = 0; j < g.kx; ++j)
      for (int k = 0; k < n; ++k) {
        double s = 0;
        int c = 0;
        for (std::int64_t r = i * g.rows; r < std::min(ny, (i + 1) * g.rows); ++r)
          for (std::int64_t q = j * g.cols; q < std::min(nx, (j + 1) * g.cols); ++q) {
            const float* v = y.data() + (r * nx + q) * n;
            if (!std::isfinite(v[1])) continue;
            s += v[k];
            ++c;
          }
        EXPECT_NEAR(means[std::size_t((i * g.kx + j) * n + k)], s / c, 1e-5) << i << "," << j << "," << k;
      }
  // One band: the whole image's mean has the bits of the built-in models' mean.
  const fit::CellGrid one = fit::single_cell(ny, nx);
  std::vector<double> s1(std::size_t(ny * n));
  std::vector<std::int64_t> c1(static_cast<std::size_t>(ny));
  fit::band_sums(y.data(), ny, one, n, s1.data(), c1.data());
  std::vector<double> s2(std::size_t(ny * n));
  std::vector<std::int64_t> c2(static_cast<std::size_t>(ny));
  fit::spectrum_row_sums(y.data(), int(ny), int(nx), n, s2.data(), c2.data());
  const auto m1 = fit::image_mean(s1, c1, one, n), m2 = fit::mean_from_row_sums(s2, c2, n);
  for (int k = 0; k < n; ++k) EXPECT_EQ(m1[std::size_t(k)], m2[std::size_t(k)]);
  // With cells, the image mean agrees to rounding.
  const auto mc = fit::image_mean(sum, count, g, n);
  for (int k = 0; k < n; ++k) EXPECT_NEAR(mc[std::size_t(k)], m2[std::size_t(k)], 1e-6);
}

// One Lorentzian dip a cell, its centre moving `move` linewidths across the grid.
struct MovingCells {
  std::vector<float> x, means;
  std::vector<double> truth;  // centre of each cell
  fit::CellGrid g;
};
MovingCells moving_cells(int k, double move) {
  MovingCells m;
  for (int i = 0; i < 200; ++i) m.x.push_back(2820.0f + 0.5f * float(i));
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0, 1e-4);
  m.g = fit::cell_grid(8 * k, 8 * k);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      const double c = 2870 + move * 2.0 * (double(j) / (k - 1) - 0.5) + 0.3 * move * double(i) / (k - 1);
      m.truth.push_back(c);
      for (float xv : m.x) {
        const double u = (xv - c) / 1.0;
        m.means.push_back(float(1 - 0.02 / (1 + u * u) + noise(rng)));
      }
    }
  return m;
}

TEST(CellStarts, CellFitsFollowALineAcrossTheImage) {
  // A 2-MHz-wide dip moving 12 linewidths each way across 9 x 9 cells: the
  // cells far from the centre are out of reach of the image's fit, but each
  // is one step from a fitted neighbour.
  const MovingCells m = moving_cells(9, 24);
  const auto spec = fit::make_model_spec("lorentzian", 1, "constant", m.x);
  const std::vector<double> global{1, 2870, 2, -0.02};
  fit::FitOptions o;
  o.threads = 2;
  const fit::CellFits cells = fit::fit_cells(spec, m.x, m.means, m.g, global, o, {});
  int far_from_global = 0;
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 9; ++j) {
      ASSERT_TRUE(cells.fitted(i, j)) << i << "," << j;
      EXPECT_NEAR(cells.at(i, j)[1], m.truth[std::size_t(i * 9 + j)], 0.02) << i << "," << j;
      // The same cell fitted from the image's fit alone.
      std::vector<float> start(global.begin(), global.end());
      const fit::FitBatch b{m.x, m.means.data() + (i * 9 + j) * 200, nullptr, nullptr, start.data(), 1};
      const auto r = fit::fit_batch(spec, b, o);
      far_from_global += !(std::fabs(r.params[1] - m.truth[std::size_t(i * 9 + j)]) < 0.1);
    }
  EXPECT_GT(far_from_global, 10);  // the rings are what reach them
  // Any thread count: the same bits.
  o.threads = 1;
  const fit::CellFits again = fit::fit_cells(spec, m.x, m.means, m.g, global, o, {});
  EXPECT_EQ(again.params, cells.params);
}

TEST(CellStarts, PixelStartsFollowAPlaneThroughTheCellsToTheBorders) {
  // Cell parameters on a plane a + b * row + c * col (at the cell centres):
  // every pixel's start is on the plane, the borders' extrapolated too, and
  // a bound clamps them.
  fit::CellFits cells;
  cells.grid = fit::cell_grid(20, 30);  // 8 x 8 cells, the last ones 4 and 6 wide
  cells.n_params = 2;
  auto plane = [](double r, double c) { return 10 + 0.5 * r - 0.25 * c; };
  for (int i = 0; i < cells.grid.ky; ++i)
    for (int j = 0; j < cells.grid.kx; ++j) {
      const double r = 0.5 * double(i * 8 + std::min<std::int64_t>(20, (i + 1) * 8) - 1);
      const double c = 0.5 * double(j * 8 + std::min<std::int64_t>(30, (j + 1) * 8) - 1);
      cells.params.push_back(plane(r, c));
      cells.params.push_back(7);
      cells.ok.push_back(1);
    }
  fit::FitOptions o;
  o.constraints = {{false, -1e9, 1e9}, {false, 0, 5}};
  const auto s = fit::starts_from_cells(cells, 3, 17, o);  // rows 3..19
  ASSERT_EQ(s.size(), std::size_t(17 * 30 * 2));
  for (std::int64_t r = 0; r < 17; ++r)
    for (std::int64_t c = 0; c < 30; ++c) {
      EXPECT_NEAR(s[std::size_t((r * 30 + c) * 2)], plane(double(r + 3), double(c)), 1e-5) << r + 3 << "," << c;
      EXPECT_EQ(s[std::size_t((r * 30 + c) * 2 + 1)], 5.0f);
    }
  // A cell that was not fitted: its pixels take their own cell's values.
  cells.ok[0] = 0;
  const auto t = fit::starts_from_cells(cells, 0, 1, o);
  EXPECT_EQ(t[0], float(cells.params[0]));
  EXPECT_NEAR(t[std::size_t(29 * 2)], plane(0, 29), 1e-5);
}

TEST(CellStarts, PixelsWorseThanTheirRowNeighboursAreRefittedFromThem) {
  // A fake fit: a refit from start value s gets chi2 |s - 5|, so the best
  // start is the one nearest 5; the first fits are given.
  const std::int64_t nx = 6;
  const int n = 3;
  fit::CellFits cells;
  cells.grid = fit::cell_grid(1, nx);
  cells.n_params = 1;
  cells.params = {9};
  cells.ok = {1};
  std::vector<float> x{0, 1, 2}, y, start(std::size_t(nx), 9.0f);
  for (std::int64_t p = 0; p < nx; ++p) y.insert(y.end(), {1.0f, 2.0f, 3.0f});
  const fit::FitBatch batch{x, y.data(), nullptr, nullptr, start.data(), nx};
  fit::FitResults res;
  res.n_params = 1;
  res.params = {4, 6, 20, 5.5f, 7, 4.5f};
  res.sigma.assign(std::size_t(nx), 0.1f);
  res.chi2 = {1, 1, 30, 1.2f, 1, 1};  // pixel 2 is clearly worse than its neighbours
  res.state = {0, 0, 0, 0, 0, 0};
  res.iterations = {3, 3, 3, 3, 3, 3};
  std::vector<float> tried;
  auto fake = [&](const fit::FitBatch& b) {
    fit::FitResults r;
    r.n_params = 1;
    for (std::int64_t p = 0; p < b.n_pix; ++p) {
      tried.push_back(b.start[p]);
      r.params.push_back(b.start[p]);
      r.sigma.push_back(0.2f);
      r.chi2.push_back(std::fabs(b.start[p] - 5.0f));
      r.state.push_back(0);
      r.iterations.push_back(7);
    }
    return r;
  };
  EXPECT_EQ(fit::rescue_worse_than_neighbours(cells, 0, 1, batch, fake, res), 1);
  // Tried from its row neighbours c-1, c+1 and its cell (which has no neighbours).
  EXPECT_EQ(tried, (std::vector<float>{6, 5.5f, 9}));
  EXPECT_EQ(res.params[2], 5.5f);
  EXPECT_FLOAT_EQ(res.chi2[2], 0.5f);
  EXPECT_EQ(res.iterations[2], 7);
  // The others are untouched.
  EXPECT_EQ(res.params[3], 5.5f);
  EXPECT_EQ(res.chi2[0], 1.0f);

  // A failed fit beside converged ones is refitted too.
  res.state[4] = 2;
  res.chi2[4] = std::numeric_limits<float>::quiet_NaN();
  res.params[4] = std::numeric_limits<float>::quiet_NaN();
  res.chi2[1] = 100;  // worse than its neighbours (1, 0.9, 1.2)
  res.chi2[2] = 0.9f;
  tried.clear();
  EXPECT_EQ(fit::rescue_worse_than_neighbours(cells, 0, 1, batch, fake, res), 2);
  EXPECT_EQ(tried, (std::vector<float>{4, 5.5f, 9, 5.5f, 4.5f, 9}));
  EXPECT_EQ(res.state[4], 0);
  EXPECT_FLOAT_EQ(res.params[4], 5.5f);
  EXPECT_FLOAT_EQ(res.chi2[1], 0.5f);

  // Refits that fail are not taken.
  res.chi2 = {1, 1, 1, 50, 1, 1};
  auto failing = [&](const fit::FitBatch& b) {
    fit::FitResults r = fake(b);
    for (auto& st : r.state) st = 2;
    return r;
  };
  EXPECT_EQ(fit::rescue_worse_than_neighbours(cells, 0, 1, batch, failing, res), 1);
  EXPECT_EQ(res.chi2[3], 50.0f);
  EXPECT_EQ(res.params[3], 5.5f);

  // With the model's own search: it is tried last, and a failed fit gets it alone.
  res.state[3] = 2;
  res.chi2[1] = 40;
  tried.clear();
  std::int64_t searched = 0;
  const fit::StartSearch search = [&](const float*, std::int64_t k) {
    searched += k;
    return std::vector<float>(std::size_t(k), 5.0f);
  };
  EXPECT_EQ(fit::rescue_worse_than_neighbours(cells, 0, 1, batch, fake, res, search), 2);
  EXPECT_EQ(searched, 2);
  EXPECT_EQ(tried, (std::vector<float>{4, 5.5f, 9, 5, 5}));
  EXPECT_EQ(res.params[1], 5.0f);
  EXPECT_EQ(res.params[3], 5.0f);
  EXPECT_EQ(res.state[3], 0);

  // A failed fit of a flat spectrum (a saturated pixel) is left as it is.
  res.state[3] = 2;
  std::fill_n(y.begin() + 3 * n, n, 7.0f);
  EXPECT_EQ(fit::rescue_worse_than_neighbours(cells, 0, 1, batch, fake, res, search), 0);
  EXPECT_EQ(res.state[3], 2);
}

}  // namespace

// bin_spectra turns the read block [sweep][row][col] into spectra [pixel][sweep]:
// at bin 1 each value as it is (an all-zero spectrum, -0 included, becomes NaN,
// one with a NaN stays as it is), binned B x B the mean in double, with a
// reference the ratio of the sums. Written out here from those definitions.
TEST(BinSpectra, TransposesBinsAndMarksEmptyPixels) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.5f, 2.f);
  for (const int bin : {1, 2, 3}) {
    for (const bool sigref : {false, true}) {
      const std::int64_t n = 37, rows = 5, nx = 19;  // output rows and columns: odd, not a tile multiple
      const fit::CubeGeometry g = fit::make_geometry(n, rows * bin, nx * bin, fit::Roi{}, bin);
      const std::int64_t cols_in = nx * bin, plane = rows * bin * cols_in;
      std::vector<float> a(std::size_t(n * plane)), b(a.size());
      for (float& v : a) v = u(rng);
      for (float& v : b) v = u(rng);
      auto in = [&](std::int64_t i, std::int64_t y, std::int64_t x) -> float& {
        return a[std::size_t(i * plane + y * cols_in + x)];
      };
      // output pixel 3: all zero (with a -0); pixel 7: a NaN at sweep point 4
      for (std::int64_t i = 0; i < n; ++i)
        for (int d = 0; d < bin * bin; ++d) in(i, d / bin, 3 * bin + d % bin) = (i == 2 ? -0.f : 0.f);
      in(4, 0, 7 * bin) = std::numeric_limits<float>::quiet_NaN();
      const auto y = fit::bin_spectra(g, rows, a.data(), sigref ? b.data() : nullptr);
      ASSERT_EQ(y.size(), std::size_t(rows * nx * n));
      for (std::int64_t oy = 0; oy < rows; ++oy)
        for (std::int64_t ox = 0; ox < nx; ++ox)
          for (std::int64_t i = 0; i < n; ++i) {
            double s = 0, t = 0;
            for (int dy = 0; dy < bin; ++dy)
              for (int dx = 0; dx < bin; ++dx) {
                const std::size_t at = std::size_t(i * plane + (oy * bin + dy) * cols_in + ox * bin + dx);
                s += a[at];
                t += b[at];
              }
            const std::int64_t p = oy * nx + ox;
            const float got = y[std::size_t(p * n + i)];
            const std::string what = "bin " + std::to_string(bin) + (sigref ? " sig/ref" : "") + " pixel " +
                                     std::to_string(p) + " point " + std::to_string(i);
            if (p == 3) {
              EXPECT_TRUE(std::isnan(got)) << what;
            } else if (p == 7 && i == 4) {
              EXPECT_TRUE(std::isnan(got)) << what;
            } else {
              const float want = float(sigref ? s / t : s / (bin * bin));
              EXPECT_EQ(got, want) << what;
            }
          }
    }
  }
}

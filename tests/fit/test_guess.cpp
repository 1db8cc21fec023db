// Automatic starts (src/fit/guess): spectrum_start lands noise-free spectra of
// every model on the truth; cube_starts gives starts on synthetic cubes whose
// peaks move by a linewidth or more (a field gradient), or whose T1 or Rabi
// frequency varies by a factor of two or more, from which the fits are as good as
// fits started at the truth; and the starts are the same bits for any split of
// the image into row blocks and any thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "fit/batch.hpp"
#include "fit/cell_starts.hpp"
#include "fit/guess.hpp"
#include "spectra.hpp"

using namespace tessera;
using namespace tessera::test;

namespace {

// A synthetic cube: the truth of every pixel, and its spectrum with noise.
struct Cube {
  fit::ModelSpec spec;
  std::vector<float> x, y;
  std::vector<double> truth;  // [n_pix][P]
  int ny = 0, nx = 0;
  int n_pix() const { return ny * nx; }
};

// truth(u, v) gives the parameters of pixel (iy, ix), u = ix / (nx - 1) and
// v = iy / (ny - 1) its coordinates scaled to [0, 1].
template <class Truth>
Cube make_cube(fit::ModelSpec spec, std::vector<float> x, int ny, int nx, double sigma,
               std::uint64_t seed, Truth truth) {
  Cube c{spec, std::move(x), {}, {}, ny, nx};
  std::mt19937_64 rng(seed);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      const auto t = truth(double(ix) / (nx - 1), double(iy) / (ny - 1));
      c.truth.insert(c.truth.end(), t.begin(), t.end());
      append_spectrum(c.spec, t, c.x, sigma, rng, c.y);
    }
  return c;
}

// Field gradient across the image: -1 at one corner, +1 at the other.
double gradient(double u, double v) { return 2 * (0.7 * u + 0.3 * v) - 1; }

// A dipole-like feature centred at (0.3, 0.6): zero far away, up to about
// 0.35 * strength nearby, of both signs.
double dipole(double u, double v, double strength) {
  const double dx = u - 0.3, dy = v - 0.6, a = 0.08;
  return strength * a * a * a * (2 * dy * dy - dx * dx) / std::pow(dx * dx + dy * dy + a * a, 2.5);
}

// Four NV orientations, eight 1 % dips of 8-10 MHz in 2700-3040 MHz; the field
// gradient moves the outer pair +-10 MHz (one linewidth) across the image, the
// inner ones less; a dipole feature of the given strength adds a local shift
// (up to about +-20 MHz on the outer pair for strength 60).
Cube odmr8_cube(int ny, int nx, std::uint64_t seed, double dipole_strength = 0,
                const char* model = "lorentzian") {
  const auto x = linspace(2700, 3040, 241);
  const auto spec = fit::make_model_spec(model, 8, "constant", x);
  return make_cube(spec, x, ny, nx, 2e-3, seed, [=](double u, double v) {
    const double S[4] = {150, 110, 70, 30}, weight[4] = {1.0, 0.9, 1.1, 0.8};
    const double g = gradient(u, v), D = 2870 + 0.5 * g;
    const double field = 1 + (10 * g + dipole(u, v, dipole_strength)) / 150;
    std::vector<double> t{1.0};
    for (int k = 0; k < 8; ++k) {
      const int pair = k < 4 ? k : 7 - k;
      t.push_back(k < 4 ? D - S[pair] * field : D + S[pair] * field);
      t.push_back(9 + std::cos(3 * v + k));
      t.push_back(-0.01 * weight[pair] * (0.85 + 0.3 * u));
    }
    return t;
  });
}

// One pair split by 70 MHz at the centre, the splitting changing by +-2 swing
// across the image (swing 25: the dips come within 20 MHz of each other).
Cube odmr2_cube(int ny, int nx, std::uint64_t seed, double swing = 14,
                const char* model = "lorentzian",
                std::vector<float> x = linspace(2800, 2940, 141)) {
  const auto spec = fit::make_model_spec(model, 2, "constant", x);
  return make_cube(spec, x, ny, nx, 2e-3, seed, [=](double u, double v) {
    const double s = 35 + swing * gradient(u, v);
    return std::vector<double>{1.0, 2870 - s, 9.0, -0.01 * (0.85 + 0.3 * v), 2870 + s, 9.0 + u,
                               -0.01};
  });
}

// T1 from 400 to 1600 us over log-spaced delays.
Cube t1_cube(int ny, int nx, std::uint64_t seed) {
  std::vector<float> x;
  for (int i = 0; i < 60; ++i) x.push_back(float(10 * std::pow(1000.0, i / 59.0)));
  const auto spec = fit::make_model_spec("stretched_exp", 0, "constant", x);
  return make_cube(spec, x, ny, nx, 0.01, seed, [](double u, double v) {
    return std::vector<double>{0.8, 0.2 * (0.8 + 0.4 * v), 400 * std::pow(4.0, u), 0.75 + 0.1 * v};
  });
}

// Rabi oscillations from 4 to 10 MHz (0.004-0.0098 cycles/ns) over 2 us.
Cube rabi_cube(int ny, int nx, std::uint64_t seed) {
  const auto x = linspace(0, 2000, 201);
  const auto spec = fit::make_model_spec("damped_cosine", 0, "constant", x);
  return make_cube(spec, x, ny, nx, 0.02, seed, [](double u, double v) {
    return std::vector<double>{1.0, 0.1, 800 * (1 + 0.5 * v), 0.004 * std::pow(2.45, u),
                               0.3 * (v - 0.5)};
  });
}

// The global start, as each rank gets it: the fit of the whole image's mean.
std::vector<double> global_start(const Cube& c) {
  const int n = int(c.x.size());
  std::vector<double> sum(size_t(c.ny) * n);
  std::vector<std::int64_t> count(c.ny);
  fit::spectrum_row_sums(c.y.data(), c.ny, c.nx, n, sum.data(), count.data());
  return fit::spectrum_start(c.spec, c.x, fit::mean_from_row_sums(sum, count, n));
}

std::vector<float> guessed_starts(const Cube& c, const std::vector<double>& global) {
  std::vector<float> start(size_t(c.n_pix()) * c.spec.n_params());
  fit::cube_starts(c.spec, c.x, c.y.data(), c.ny, c.nx, global, {}, start.data());
  return start;
}

std::vector<float> repeated(const std::vector<double>& p, int n_pix) {
  std::vector<float> s;
  for (int i = 0; i < n_pix; ++i) s.insert(s.end(), p.begin(), p.end());
  return s;
}

fit::FitResults fit_from(const Cube& c, const std::vector<float>& start) {
  const fit::FitBatch b{c.x, c.y.data(), nullptr, nullptr, start.data(), c.n_pix()};
  return fit::fit_batch(c.spec, b, {});
}

// Fraction of pixels not fitted or with any centre more than `tol` off.
double fraction_off(const Cube& c, const fit::FitResults& r, double tol) {
  const int P = c.spec.n_params();
  int off = 0;
  for (int i = 0; i < c.n_pix(); ++i) {
    bool bad = r.state[i] > int(fit::FitState::iteration_limit);
    for (int k = 0; k < c.spec.n_peaks; ++k) {
      const int j = 1 + 3 * k;
      bad |= !(std::abs(r.params[i * P + j] - c.truth[i * P + j]) <= tol);
    }
    off += bad;
  }
  return double(off) / c.n_pix();
}

// Median absolute error of parameter j over all pixels (NaN counts as huge).
double median_error(const Cube& c, const fit::FitResults& r, std::vector<int> js) {
  const int P = c.spec.n_params();
  std::vector<double> e;
  for (int i = 0; i < c.n_pix(); ++i)
    for (int j : js) {
      const double d = std::abs(r.params[i * P + j] - c.truth[i * P + j]);
      e.push_back(std::isfinite(d) ? d : 1e30);
    }
  std::nth_element(e.begin(), e.begin() + e.size() / 2, e.end());
  return e[e.size() / 2];
}

std::vector<int> centres(const fit::ModelSpec& s) {
  std::vector<int> j;
  for (int k = 0; k < s.n_peaks; ++k) j.push_back(1 + 3 * k);
  return j;
}

// Noise-free spectrum: spectrum_start must land on the truth.
void expect_spectrum_start(const fit::ModelSpec& spec, const std::vector<float>& x,
                           const std::vector<double>& truth, double rel = 1e-4) {
  std::vector<float> y;
  std::mt19937_64 rng(1);
  append_spectrum(spec, truth, x, 0.0, rng, y);
  const auto p = fit::spectrum_start(spec, x, y);
  const auto names = spec.param_names();
  ASSERT_EQ(p.size(), truth.size());
  for (size_t j = 0; j < truth.size(); ++j)
    EXPECT_NEAR(p[j], truth[j], rel * std::max(std::abs(truth[j]), 1e-3))
        << spec.model_name() << " " << names[j];
}

}  // namespace

// ---- spectrum_start on single noise-free spectra ---------------------------------

TEST(SpectrumStart, LorentzianOnePeak) {
  const auto x = linspace(2800, 2940, 141);
  expect_spectrum_start(fit::make_model_spec("lorentzian", 1, "constant", x), x,
                        {1.0, 2883.0, 9.0, -0.01});
}

TEST(SpectrumStart, LorentzianTwoPeaksLinearBackground) {
  const auto x = linspace(2800, 2940, 141);
  auto truth = odmr_truth(2, 2870, 60);
  truth.insert(truth.begin() + 1, 1e-4);
  expect_spectrum_start(fit::make_model_spec("lorentzian", 2, "linear", x), x, truth);
}

TEST(SpectrumStart, LorentzianEightPeaks) {
  const auto x = linspace(2700, 3040, 241);
  const auto c = odmr8_cube(2, 2, 0);  // its first pixel's truth
  expect_spectrum_start(c.spec, x, std::vector<double>(c.truth.begin(), c.truth.begin() + 25));
}

TEST(SpectrumStart, GaussianTwoPeaksPointingUp) {
  const auto x = linspace(2800, 2940, 141);
  expect_spectrum_start(fit::make_model_spec("gaussian", 2, "constant", x), x,
                        {100.0, 2850.0, 12.0, 5.0, 2890.0, 10.0, 3.0});
}

TEST(SpectrumStart, StretchedExponential) {
  std::vector<float> x;
  for (int i = 0; i < 60; ++i) x.push_back(float(10 * std::pow(1000.0, i / 59.0)));
  expect_spectrum_start(fit::make_model_spec("stretched_exp", 0, "constant", x), x,
                        {0.8, 0.2, 700.0, 0.8});
  const auto xu = linspace(0, 5000, 80);  // uniform, decaying down to a negative offset
  expect_spectrum_start(fit::make_model_spec("stretched_exp", 0, "constant", xu), xu,
                        {-0.2, 0.8, 900.0, 1.3});
}

TEST(SpectrumStart, DampedCosine) {
  const auto x = linspace(0, 2000, 200);
  const auto spec = fit::make_model_spec("damped_cosine", 0, "constant", x);
  expect_spectrum_start(spec, x, {0.5, 0.3, 800.0, 0.0125, 0.4});
  expect_spectrum_start(spec, x, {1.0, 0.1, 3000.0, 0.0031, -2.0});
}

TEST(SpectrumStart, RejectsBadInput) {
  const auto x = linspace(0, 10, 5);
  const auto spec = fit::make_model_spec("damped_cosine", 0, "constant", x);
  std::vector<float> y(5, 1.0f);
  EXPECT_THROW(fit::spectrum_start(spec, x, std::span<const float>(y).first(4)),
               std::invalid_argument);
  y[2] = NAN;
  EXPECT_THROW(fit::spectrum_start(spec, x, y), std::invalid_argument);
  const auto x3 = linspace(0, 10, 3);
  EXPECT_THROW(fit::spectrum_start(spec, x3, std::vector<float>(3, 1.0f)), std::invalid_argument);
}

// ---- cube_starts on moving peaks ----------------------------------------------------

// Fits of a cube from cube_starts, from the mean-spectrum fit at every pixel,
// from the truth, and coarse to fine (the cells, then cube_starts for the
// pixels worse than their neighbours, as tessera fit runs them): the fraction
// of pixels with any centre more than 5 MHz off, and the median centre error.
struct PeakOutcome {
  double off_guess, off_mean, off_truth, med_guess, med_truth, off_cells, med_cells;
};

// The coarse-to-fine path (fit/cell_starts.hpp) with the model's search for
// the pixels worse than their row neighbours, as CubeFitter runs it.
fit::FitResults fit_from_cells(const Cube& c, std::int64_t* refitted = nullptr) {
  const int n = int(c.x.size()), P = c.spec.n_params();
  const auto grid = fit::cell_grid(c.ny, c.nx);
  std::vector<double> sum(std::size_t(c.ny) * grid.kx * n);
  std::vector<std::int64_t> count(std::size_t(c.ny) * grid.kx);
  fit::band_sums(c.y.data(), c.ny, grid, n, sum.data(), count.data());
  const auto g = fit::spectrum_start(c.spec, c.x, fit::image_mean(sum, count, grid, n));
  const auto cells = fit::fit_cells(c.spec, c.x, fit::cell_means(sum, count, grid, n), grid, g, {}, {});
  const auto start = fit::starts_from_cells(cells, 0, c.ny, {});
  const fit::FitBatch b{c.x, c.y.data(), nullptr, nullptr, start.data(), c.n_pix()};
  fit::FitResults r = fit::fit_batch(c.spec, b, {});
  const fit::StartSearch search = [&](const float* y, std::int64_t k) {
    std::vector<float> s(std::size_t(k * P));
    fit::cube_starts(c.spec, c.x, y, 1, int(k), g, {}, s.data());
    return s;
  };
  const std::int64_t m = fit::rescue_worse_than_neighbours(
      cells, 0, c.ny, b, [&](const fit::FitBatch& q) { return fit::fit_batch(c.spec, q, {}); }, r, search);
  if (refitted) *refitted = m;
  return r;
}

PeakOutcome peak_outcome(const Cube& c, const char* what) {
  const auto global = global_start(c);
  const auto guess = fit_from(c, guessed_starts(c, global));
  const auto mean = fit_from(c, repeated(global, c.n_pix()));
  const auto truth = fit_from(c, std::vector<float>(c.truth.begin(), c.truth.end()));
  std::int64_t refitted = 0;
  const auto cells = fit_from_cells(c, &refitted);
  const PeakOutcome o{fraction_off(c, guess, 5.0),  fraction_off(c, mean, 5.0),
                      fraction_off(c, truth, 5.0),  median_error(c, guess, centres(c.spec)),
                      median_error(c, truth, centres(c.spec)), fraction_off(c, cells, 5.0),
                      median_error(c, cells, centres(c.spec))};
  std::printf("[ guess ] %s, %d pixels: any centre > 5 MHz off: cube_starts %.3f %%, "
              "mean-spectrum start %.3f %%, truth start %.3f %%; median centre error %.4f MHz "
              "(truth start %.4f, ratio %.4f)\n",
              what, c.n_pix(), 100 * o.off_guess, 100 * o.off_mean, 100 * o.off_truth, o.med_guess,
              o.med_truth, o.med_guess / o.med_truth);
  std::printf("[ cells ] %s: any centre > 5 MHz off: %.3f %% coarse to fine (%lld pixels searched); "
              "median centre error %.4f MHz (ratio to the truth start's %.4f)\n",
              what, 100 * o.off_cells, (long long)refitted, o.med_cells, o.med_cells / o.med_truth);
  return o;
}

TEST(CubeStarts, EightPeaksMovingOneLinewidth) {
  const auto o = peak_outcome(odmr8_cube(64, 64, 11), "8 lorentzian peaks, gradient");
  EXPECT_LT(o.off_guess, 0.002);
  EXPECT_LE(o.med_guess, 1.05 * o.med_truth);
  EXPECT_LE(o.off_cells, o.off_guess);  // coarse to fine loses no more pixels
  EXPECT_LE(o.med_cells, 1.05 * o.med_truth);
}

// Gaussian lines and a dipole feature that moves the outer peaks up to about
// +-20 MHz locally: here the mean-spectrum start loses some pixels.
TEST(CubeStarts, EightGaussianPeaksGradientAndDipole) {
  const auto o =
      peak_outcome(odmr8_cube(48, 48, 15, 60, "gaussian"), "8 gaussian peaks, gradient + dipole");
  EXPECT_LT(o.off_guess, 0.002);
  EXPECT_LE(o.off_guess, o.off_truth + 0.0005);
  EXPECT_LE(o.med_guess, 1.05 * o.med_truth);
  EXPECT_LE(o.off_cells, o.off_guess);  // coarse to fine loses no more pixels
  EXPECT_LE(o.med_cells, 1.05 * o.med_truth);
}

TEST(CubeStarts, TwoPeaksMovingMoreThanALinewidth) {
  const auto o = peak_outcome(odmr2_cube(64, 64, 12), "2 lorentzian peaks, +-14 MHz");
  EXPECT_LE(o.off_guess, 0.001);
  EXPECT_LE(o.med_guess, 1.05 * o.med_truth);
  EXPECT_LE(o.off_cells, o.off_guess);  // coarse to fine loses no more pixels
  EXPECT_LE(o.med_cells, 1.05 * o.med_truth);
}

// Gaussian lines (no long tails to pull a distant start) that move +-25 MHz,
// nearly three linewidths: the mean-spectrum start loses some pixels.
TEST(CubeStarts, TwoGaussianPeaksMovingThreeLinewidths) {
  const auto o = peak_outcome(odmr2_cube(64, 64, 16, 25, "gaussian"), "2 gaussian peaks, +-25 MHz");
  EXPECT_LE(o.off_guess, 0.001);
  EXPECT_LE(o.med_guess, 1.05 * o.med_truth);
  EXPECT_LE(o.off_cells, o.off_guess);  // coarse to fine loses no more pixels
  EXPECT_LE(o.med_cells, 1.05 * o.med_truth);
}

// A sweep denser at the centre: the search's general (non-uniform) path.
TEST(CubeStarts, TwoPeaksOnANonUniformSweep) {
  std::vector<float> x;
  for (int i = 0; i < 161; ++i)
    x.push_back(float(2870 + 75 * std::sinh(2.0 * (i / 80.0 - 1)) / std::sinh(2.0)));
  const auto o =
      peak_outcome(odmr2_cube(32, 32, 17, 14, "lorentzian", x), "2 peaks, non-uniform sweep");
  EXPECT_LE(o.off_guess, 0.001);
  EXPECT_LE(o.med_guess, 1.05 * o.med_truth);
  EXPECT_LE(o.off_cells, o.off_guess);  // coarse to fine loses no more pixels
  EXPECT_LE(o.med_cells, 1.05 * o.med_truth);
}

// ---- cube_starts on decays -----------------------------------------------------------

// Fraction of pixels not fitted or with parameter j more than tol off.
double fraction_off_by(const Cube& c, const fit::FitResults& r, int j, double tol) {
  const int P = c.spec.n_params();
  int off = 0;
  for (int i = 0; i < c.n_pix(); ++i)
    off += !(std::abs(r.params[i * P + j] - c.truth[i * P + j]) <= tol);
  return double(off) / c.n_pix();
}

// Median absolute errors of every parameter from cube_starts within 10 % of
// those from the truth; key: the parameter that varies across the image.
void expect_as_good_as_truth(const Cube& c, const char* what, int key) {
  const auto global = global_start(c);
  const auto guess = fit_from(c, guessed_starts(c, global));
  const auto mean = fit_from(c, repeated(global, c.n_pix()));
  const auto truth = fit_from(c, std::vector<float>(c.truth.begin(), c.truth.end()));
  const auto names = c.spec.param_names();
  for (int j = 0; j < c.spec.n_params(); ++j) {
    const double eg = median_error(c, guess, {j}), et = median_error(c, truth, {j});
    std::printf("[ guess ] %s %s: median |error| %.4g from cube_starts, %.4g from the truth "
                "(ratio %.4f), %.4g from the mean-spectrum start\n",
                what, names[j].c_str(), eg, et, eg / et, median_error(c, mean, {j}));
    EXPECT_LE(eg, 1.10 * et) << names[j];
  }
  const double tol = 5 * median_error(c, truth, {key});
  std::printf("[ guess ] %s: %s more than %.3g (5 median errors) off: cube_starts %.3f %%, "
              "mean-spectrum start %.3f %%, truth start %.3f %%\n",
              what, names[key].c_str(), tol, 100 * fraction_off_by(c, guess, key, tol),
              100 * fraction_off_by(c, mean, key, tol), 100 * fraction_off_by(c, truth, key, tol));
}

TEST(CubeStarts, T1VaryingFourfold) { expect_as_good_as_truth(t1_cube(48, 48, 13), "T1", 2); }

TEST(CubeStarts, RabiFrequencyVaryingTwoAndAHalfFold) {
  expect_as_good_as_truth(rabi_cube(48, 48, 14), "Rabi", 3);
}

// ---- properties --------------------------------------------------------------------

// The same bits for any split into row blocks (ranks, chunks) and any thread count.
TEST(CubeStarts, IndependentOfRowBlocksAndThreads) {
  for (const Cube& c : {odmr2_cube(14, 9, 21), rabi_cube(14, 9, 22), t1_cube(14, 9, 23)}) {
    const int P = c.spec.n_params(), n = int(c.x.size());
    const auto global = global_start(c);
    const auto whole = guessed_starts(c, global);
    for (int ranks : {2, 3, 7}) {
      for (int threads : {1, 2}) {
        std::vector<float> parts(whole.size(), NAN);
        fit::FitOptions o;
        o.threads = threads;
        for (int r = 0; r < ranks; ++r) {
          const int y0 = c.ny * r / ranks, y1 = c.ny * (r + 1) / ranks;
          fit::cube_starts(c.spec, c.x, c.y.data() + size_t(y0) * c.nx * n, y1 - y0, c.nx, global,
                           o, parts.data() + size_t(y0) * c.nx * P);
        }
        EXPECT_EQ(std::memcmp(parts.data(), whole.data(), whole.size() * sizeof(float)), 0)
            << c.spec.model_name() << " ranks " << ranks << " threads " << threads;
      }
    }
  }
}

// Row sums combined in row order: the same mean whatever the split.
TEST(CubeStarts, MeanSpectrumIndependentOfRowBlocks) {
  const Cube c = odmr2_cube(10, 7, 31);
  const int n = int(c.x.size());
  std::vector<double> sum(size_t(c.ny) * n), part(sum.size());
  std::vector<std::int64_t> count(c.ny), pcount(c.ny);
  fit::spectrum_row_sums(c.y.data(), c.ny, c.nx, n, sum.data(), count.data());
  for (auto [y0, y1] : {std::pair{0, 3}, {3, 4}, {4, 9}, {9, 10}})
    fit::spectrum_row_sums(c.y.data() + size_t(y0) * c.nx * n, y1 - y0, c.nx, n,
                           part.data() + size_t(y0) * n, pcount.data() + y0);
  EXPECT_EQ(fit::mean_from_row_sums(sum, count, n), fit::mean_from_row_sums(part, pcount, n));
}

// Non-finite pixels get the finite global start; fixed parameters keep their
// value; bounds hold.
TEST(CubeStarts, BadPixelsFixedAndBoundedParameters) {
  Cube c = odmr2_cube(4, 5, 41);
  const int P = c.spec.n_params(), n = int(c.x.size());
  c.y[size_t(3) * n + 10] = NAN;
  c.y[size_t(7) * n] = INFINITY;
  fit::FitOptions o;
  o.constraints.resize(P);
  o.constraints[0].fixed = true;
  o.constraints[2] = {false, 8.5, 9.5};  // fwhm0
  auto global = global_start(c);
  global[0] = 1.0;  // the fixed value
  std::vector<float> start(size_t(c.n_pix()) * P);
  fit::cube_starts(c.spec, c.x, c.y.data(), c.ny, c.nx, global, o, start.data());
  for (int i = 0; i < c.n_pix(); ++i) {
    for (int j = 0; j < P; ++j) EXPECT_TRUE(std::isfinite(start[i * P + j])) << i << " " << j;
    EXPECT_EQ(start[i * P], 1.0f);
    EXPECT_GE(start[i * P + 2], 8.5f);
    EXPECT_LE(start[i * P + 2], 9.5f);
  }
  auto expected = global;
  expected[2] = std::clamp(expected[2], 8.5, 9.5);
  for (int pix : {3, 7})
    for (int j = 0; j < P; ++j)
      EXPECT_EQ(start[pix * P + j], float(expected[j])) << pix << " " << j;
}

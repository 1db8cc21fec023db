#include "odmr_cases.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

namespace tessera::bench {
namespace {

constexpr double zero_field_mhz = 2870.0;

std::vector<float> linspace(double lo, double hi, int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(lo + (hi - lo) * i / (n - 1));
  return v;
}

// Low-discrepancy coordinate in [0, 1) for pixel i: any prefix of the pixels
// (the subset Ceres fits) covers the whole range of each varied quantity.
double frac(std::int64_t i, double irrational) {
  const double v = static_cast<double>(i) * irrational;
  return v - std::floor(v);
}
constexpr double golden = 0.6180339887498949;
constexpr double sqrt2m1 = 0.4142135623730951;
constexpr double sqrt3m1 = 0.7320508075688772;
constexpr double sqrt5m2 = 0.2360679774997897;

struct Dip {
  double pos, fwhm, amp;
};

// Dips sorted by position into p[1..]; p[0] is the offset.
void pack_dips(std::vector<Dip> dips, double offset, double* p) {
  std::sort(dips.begin(), dips.end(), [](const Dip& l, const Dip& r) { return l.pos < r.pos; });
  p[0] = offset;
  for (std::size_t k = 0; k < dips.size(); ++k) {
    p[pos_index(k)] = dips[k].pos;
    p[fwhm_index(k)] = dips[k].fwhm;
    p[amp_index(k)] = dips[k].amp;
  }
}

// Per-dip width and contrast, varied over pixels: fwhm 8..10 MHz, amp -0.009..-0.011.
Dip shaped_dip(std::int64_t i, int k, double pos) {
  const double w = frac(i * 8 + k + 1, sqrt3m1);
  const double a = frac(i * 8 + k + 1, sqrt5m2);
  return {pos, 8.0 + 2.0 * w, -0.01 * (0.9 + 0.2 * a)};
}

// Case A: one NV orientation; a field gradient sweeps the splitting 20..80 MHz.
void truth_a(std::int64_t i, double* p) {
  const double splitting = 20.0 + 60.0 * frac(i, golden);
  const double offset = 1.0 + 0.02 * (frac(i, sqrt2m1) - 0.5);  // illumination falls off
  pack_dips({shaped_dip(i, 0, zero_field_mhz - splitting / 2), shaped_dip(i, 1, zero_field_mhz + splitting / 2)},
            offset, p);
}

// Case B: the four NV orientations of a diamond, a field of fixed direction whose
// magnitude varies over the pixels (gamma B = 100..140 MHz). The direction
// (theta 29.1 deg, phi 26.4 deg in the crystal frame) spreads the projections
// |n_k . b| to 0.128, 0.378, 0.631, 0.881, so the 8 dips are resolved.
void truth_b(std::int64_t i, double* p) {
  static constexpr std::array<std::array<double, 3>, 4> axes{{{1, 1, 1}, {1, -1, -1}, {-1, 1, -1}, {-1, -1, 1}}};
  const std::array<double, 3> b{0.43561631966582914, 0.2162418190185685, 0.8737722230354653};
  const double gamma_b = 100.0 + 40.0 * frac(i, golden);
  const double offset = 1.0 + 0.02 * (frac(i, sqrt2m1) - 0.5);
  std::vector<Dip> dips;
  for (int k = 0; k < 4; ++k) {
    const double proj = std::abs(axes[k][0] * b[0] + axes[k][1] * b[1] + axes[k][2] * b[2]) / std::sqrt(3.0);
    dips.push_back(shaped_dip(i, 2 * k, zero_field_mhz - gamma_b * proj));
    dips.push_back(shaped_dip(i, 2 * k + 1, zero_field_mhz + gamma_b * proj));
  }
  pack_dips(std::move(dips), offset, p);
}

// The start values: truth moved by a fixed, deterministic amount, the same for
// both solvers: centres 1.5 MHz (alternately up and down), widths +15 %,
// contrasts -15 % (shallower), offset +0.002.
void perturb_start(int n_peaks, const double* truth, float* start) {
  start[0] = static_cast<float>(truth[0] + 0.002);
  for (int k = 0; k < n_peaks; ++k) {
    const int b = pos_index(k);
    start[b] = static_cast<float>(truth[b] + (k % 2 == 0 ? 1.5 : -1.5));
    start[b + 1] = static_cast<float>(truth[b + 1] * 1.15);
    start[b + 2] = static_cast<float>(truth[b + 2] * 0.85);
  }
}

}  // namespace

OdmrCase case_a() {
  OdmrCase c;
  c.id = CaseId::a;
  c.label = "A";
  c.description = "2 dips + offset, 7 par, 100 pts";
  c.n_peaks = 2;
  c.sweep = linspace(2800.0, 2940.0, 100);
  c.default_pixels = 100000;
  c.default_ceres_pixels = 50000;
  return c;
}

OdmrCase case_b() {
  OdmrCase c;
  c.id = CaseId::b;
  c.label = "B";
  c.description = "8 dips + offset, 25 par, 241 pts";
  c.n_peaks = 8;
  c.sweep = linspace(2700.0, 3040.0, 241);
  c.default_pixels = 20000;
  c.default_ceres_pixels = 3600;
  return c;
}

double lorentzian_dips(std::span<const double> p, int n_peaks, double x) {
  double f = p[0];
  for (int k = 0; k < n_peaks; ++k) {
    const double u = 2.0 * (x - p[pos_index(k)]) / p[fwhm_index(k)];
    f += p[amp_index(k)] / (1.0 + u * u);
  }
  return f;
}

SimulatedCube simulate(const OdmrCase& c, std::int64_t n_pix, std::uint64_t seed) {
  SimulatedCube cube;
  cube.n_pix = n_pix;
  cube.n_params = c.n_params();
  cube.n_points = c.n_points();
  cube.truth.resize(static_cast<std::size_t>(n_pix) * cube.n_params);
  cube.start.resize(cube.truth.size());
  cube.y.resize(static_cast<std::size_t>(n_pix) * cube.n_points);

  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, noise_sigma);
  for (std::int64_t i = 0; i < n_pix; ++i) {
    double* p = cube.truth.data() + i * cube.n_params;
    if (c.id == CaseId::a) truth_a(i, p); else truth_b(i, p);
    perturb_start(c.n_peaks, p, cube.start.data() + i * cube.n_params);
    const std::span<const double> ps(p, cube.n_params);
    float* y = cube.y.data() + i * cube.n_points;
    for (int j = 0; j < cube.n_points; ++j)
      y[j] = static_cast<float>(lorentzian_dips(ps, c.n_peaks, c.sweep[j]) + noise(rng));
  }
  return cube;
}

std::vector<double> centre_crb_variance(const OdmrCase& c, std::span<const double> p) {
  const int m = c.n_points(), n = c.n_params();
  Eigen::MatrixXd jac(m, n);
  for (int j = 0; j < m; ++j) {
    const double x = c.sweep[j];
    jac(j, 0) = 1.0;
    for (int k = 0; k < c.n_peaks; ++k) {
      const int b = pos_index(k);
      const double pos = p[b], fwhm = p[b + 1], amp = p[b + 2];
      const double u = 2.0 * (x - pos) / fwhm, s = 1.0 / (1.0 + u * u);
      const double ds_du = -2.0 * u * s * s;
      jac(j, b) = amp * ds_du * (-2.0 / fwhm);
      jac(j, b + 1) = amp * ds_du * (-u / fwhm);
      jac(j, b + 2) = s;
    }
  }
  const Eigen::MatrixXd cov =
      (jac.transpose() * jac).ldlt().solve(Eigen::MatrixXd::Identity(n, n)) * (noise_sigma * noise_sigma);
  std::vector<double> var(c.n_peaks);
  for (int k = 0; k < c.n_peaks; ++k) var[k] = cov(pos_index(k), pos_index(k));
  return var;
}

}  // namespace tessera::bench

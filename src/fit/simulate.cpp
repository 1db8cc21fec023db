#include "simulate.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

namespace tessera::fit {

namespace {

using Vec3 = std::array<double, 3>;

double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

// Field (mT) at pixel (iy, ix): bias along a direction that splits all four NV
// axes differently, a gradient along x, and a point dipole under the centre.
Vec3 field_at(const SimOptions& o, int iy, int ix) {
  // Projections on the four <111> axes 0.21, 0.42, 0.63, 0.84: evenly spread
  // lines, none of them pairs merging at the centre.
  const Vec3 dir{0.91299324, -0.1824684, -0.36489536};
  const double norm = std::sqrt(dot(dir, dir));
  const double u = o.nx > 1 ? double(ix) / (o.nx - 1) - 0.5 : 0.0;  // -0.5 .. 0.5
  const double v = o.ny > 1 ? double(iy) / (o.ny - 1) - 0.5 : 0.0;
  // The outermost peak moves by gamma * dB; the gradient spreads gradient_mhz.
  const double grad_mt = o.gradient_mhz / nv_gamma_mhz_per_mt * u;
  // z field of a point dipole (moment along z) at depth d below the centre:
  // proportional to (2 d^2 - rho^2) / (rho^2 + d^2)^(5/2), scaled so that it is
  // dipole_mhz / gamma right above it.
  const double d2 = 0.02, rho2 = u * u + v * v;  // depth 0.14 image widths
  const double shape = d2 * std::sqrt(d2) / 2 * (2 * d2 - rho2) / std::pow(rho2 + d2, 2.5);
  const double dip_mt = o.dipole_mhz / nv_gamma_mhz_per_mt * shape;
  const double b = o.bias_mt + grad_mt;
  return {b * dir[0] / norm, b * dir[1] / norm, b * dir[2] / norm + dip_mt};
}

std::vector<float> linspace(double a, double b, int n) {
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = float(a + (b - a) * i / std::max(1, n - 1));
  return x;
}

std::vector<float> logspace(double a, double b, int n) {
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = float(a * std::pow(b / a, double(i) / std::max(1, n - 1)));
  return x;
}

// Truth parameters of pixel (iy, ix), in the spec's order.
std::vector<double> odmr_truth(const SimOptions& o, int iy, int ix, std::vector<double>& bnv) {
  const Vec3 B = field_at(o, iy, ix);
  std::vector<double> proj;
  if (o.n_peaks == 2) {
    proj.push_back(std::sqrt(dot(B, B)));  // the axis along the bias field
  } else {
    const double s = 1 / std::sqrt(3.0);
    const Vec3 axes[4] = {{s, s, s}, {s, -s, -s}, {-s, s, -s}, {-s, -s, s}};
    for (const Vec3& n : axes) proj.push_back(std::abs(dot(B, n)));
    std::sort(proj.begin(), proj.end(), std::greater<>());  // outer pair first
  }
  bnv = proj;
  std::vector<double> pos;
  for (double bp : proj) {
    pos.push_back(nv_zero_field_mhz - nv_gamma_mhz_per_mt * bp);
    pos.push_back(nv_zero_field_mhz + nv_gamma_mhz_per_mt * bp);
  }
  std::sort(pos.begin(), pos.end());
  // Slight variation of width and contrast across the image, as in real data.
  const double u = o.nx > 1 ? double(ix) / (o.nx - 1) : 0.0;
  std::vector<double> t{1.0};
  for (size_t k = 0; k < pos.size(); ++k) {
    t.push_back(pos[k]);
    t.push_back(o.fwhm * (0.95 + 0.1 * u));
    t.push_back(-o.contrast * (1.0 - 0.1 * u) * (k % 2 ? 1.0 : 0.95));
  }
  return t;
}

}  // namespace

SimCube simulate(const std::string& kind, const SimOptions& o) {
  if (o.ny < 1 || o.nx < 1) throw std::invalid_argument("--size must be at least 1x1");
  if (o.noise < 0 || o.photons < 0) throw std::invalid_argument("--noise and --photons must be >= 0");
  SimCube c;
  c.ny = o.ny;
  c.nx = o.nx;
  if (kind == "odmr") {
    if (o.n_peaks != 2 && o.n_peaks != 8) throw std::invalid_argument("--peaks must be 2 or 8 for odmr");
    const double span = o.n_peaks == 2 ? 150 : 180;
    c.sweep = linspace(nv_zero_field_mhz - span, nv_zero_field_mhz + span, o.n_sweep ? o.n_sweep : 201);
    c.spec = make_model_spec("lorentzian", o.n_peaks, "constant", c.sweep);
    c.x_unit = "MHz";
  } else if (kind == "t1") {
    c.sweep = logspace(1, 1e4, o.n_sweep ? o.n_sweep : 60);  // microseconds
    c.spec = make_model_spec("stretched_exp", 0, "constant", c.sweep);
    c.x_unit = "us";
  } else if (kind == "rabi") {
    c.sweep = linspace(0, 2000, o.n_sweep ? o.n_sweep : 120);  // nanoseconds
    c.spec = make_model_spec("damped_cosine", 0, "constant", c.sweep);
    c.x_unit = "ns";
  } else {
    throw std::invalid_argument("unknown simulation '" + kind + "' (odmr, t1 or rabi)");
  }
  c.y_unit = o.photons > 0 ? "sig/ref" : "normalised";
  const int P = c.spec.n_params(), n = c.n_sweep();
  if (n < P) throw std::invalid_argument("--sweep-points must be at least " + std::to_string(P));
  const std::int64_t npix = std::int64_t(o.ny) * o.nx;
  c.data.assign(size_t(n) * npix, 0.0f);
  c.truth.assign(size_t(P) * npix, std::numeric_limits<float>::quiet_NaN());
  if (kind == "odmr") c.bnv.assign(size_t(o.n_peaks / 2) * npix, std::numeric_limits<float>::quiet_NaN());
  if (o.photons > 0) {
    c.sig.assign(c.data.size(), 0.0f);
    c.ref.assign(c.data.size(), 0.0f);
  }
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> gauss(0.0, 1.0);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  const std::vector<double> xd(c.sweep.begin(), c.sweep.end());
  for (int iy = 0; iy < o.ny; ++iy)
    for (int ix = 0; ix < o.nx; ++ix) {
      const std::int64_t pix = std::int64_t(iy) * o.nx + ix;
      const double roll = uni(rng);
      const bool dead = roll < o.bad_fraction, saturated = !dead && roll < 2 * o.bad_fraction;
      std::vector<double> t, bnv;
      const double u = o.nx > 1 ? double(ix) / (o.nx - 1) : 0.0;
      const double v = o.ny > 1 ? double(iy) / (o.ny - 1) : 0.0;
      if (kind == "odmr") {
        t = odmr_truth(o, iy, ix, bnv);
      } else if (kind == "t1") {
        const double t1 = 300.0 * std::pow(o.t1_ratio, 0.5 * (u + v));  // us
        t = {0.1, 0.9, t1, 0.8 + 0.2 * v};
      } else {
        const double f = 0.004 * std::pow(o.freq_ratio, u);  // cycles per ns: 4 MHz and up
        t = {0.5, 0.4, 800.0 + 400.0 * v, f, 0.0};
      }
      const auto f = model_values(c.spec, t, xd);
      for (int i = 0; i < n; ++i) {
        const size_t at = size_t(i) * npix + pix;
        double value;
        if (o.photons > 0) {
          const double ref = std::poisson_distribution<long>(o.photons)(rng);
          const double sig = std::poisson_distribution<long>(o.photons * f[i])(rng);
          c.ref[at] = float(ref);
          c.sig[at] = float(sig);
          value = ref > 0 ? sig / ref : 0.0;
        } else {
          value = f[i] + o.noise * gauss(rng);
        }
        c.data[at] = dead ? 0.0f : saturated ? 1.0f : float(value);
        if (o.photons > 0 && (dead || saturated)) c.sig[at] = c.ref[at] = dead ? 0.0f : float(o.photons);
      }
      if (dead || saturated) continue;
      for (int j = 0; j < P; ++j) c.truth[size_t(j) * npix + pix] = float(t[j]);
      for (size_t k = 0; k < bnv.size(); ++k) c.bnv[k * npix + pix] = float(bnv[k]);
    }
  return c;
}

}  // namespace tessera::fit

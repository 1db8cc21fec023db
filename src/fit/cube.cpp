#include "cube.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "core/linalg.hpp"
#include "nv.hpp"
#include "user_model.hpp"

namespace tessera::fit {

Roi parse_roi(const std::string& text) {
  if (text.empty()) return {};
  long long a, b, c, d;
  char tail;
  if (std::sscanf(text.c_str(), "%lld:%lld,%lld:%lld%c", &a, &b, &c, &d, &tail) != 4)
    throw std::invalid_argument("--roi must look like y0:y1,x0:x1, got '" + text + "'");
  return {a, b, c, d};
}

std::string roi_text(const Roi& r) {
  return std::to_string(r.y0) + ":" + std::to_string(r.y1) + "," + std::to_string(r.x0) + ":" +
         std::to_string(r.x1);
}

CubeGeometry make_geometry(std::int64_t n_sweep, std::int64_t ny_in, std::int64_t nx_in,
                           const Roi& roi, int bin) {
  CubeGeometry g;
  g.n_sweep = n_sweep;
  g.ny_in = ny_in;
  g.nx_in = nx_in;
  g.y1 = ny_in;
  g.x1 = nx_in;
  if (!roi.whole()) {
    if (roi.y0 < 0 || roi.x0 < 0 || roi.y1 > ny_in || roi.x1 > nx_in || roi.y0 >= roi.y1 ||
        roi.x0 >= roi.x1)
      throw std::invalid_argument("--roi " + roi_text(roi) + " is empty or outside the image (" +
                                  std::to_string(ny_in) + " x " + std::to_string(nx_in) + ")");
    g.y0 = roi.y0, g.y1 = roi.y1, g.x0 = roi.x0, g.x1 = roi.x1;
  }
  if (bin < 1) throw std::invalid_argument("--bin must be at least 1");
  g.bin = bin;
  g.ny = (g.y1 - g.y0) / bin;
  g.nx = (g.x1 - g.x0) / bin;
  if (g.ny < 1 || g.nx < 1)
    throw std::invalid_argument("--bin " + std::to_string(bin) + " is larger than the region");
  return g;
}

std::vector<float> bin_spectra(const CubeGeometry& g, std::int64_t rows, const float* a,
                               const float* b) {
  std::vector<float> y(std::size_t(rows * g.nx * g.n_sweep));
  bin_spectra_into(g, rows, a, b, y.data());
  return y;
}

void bin_spectra_into(const CubeGeometry& g, std::int64_t rows, const float* a, const float* b,
                      float* y) {
  const std::int64_t n = g.n_sweep, block_rows = rows * g.bin, cols_in = g.nx * g.bin;
  const bool sigref = b != nullptr;
  const int B = g.bin;
  if (B == 1 && !sigref) {
    // The input's values (float -> double -> float is exact), transposed from
    // [sweep][pixel] to [pixel][sweep] a tile of 256 pixels at a time: each
    // sweep plane is read 1 KiB at a time and the tile's spectra (100 KiB for
    // 100 points) stay in L2. The loop below reads one float per cache line per
    // pixel: 1.7 times the time of this one (perf, a 512 x 512 x 100 cube).
    const std::int64_t npix = rows * g.nx;
    constexpr std::int64_t tile = 256;
    for (std::int64_t p0 = 0; p0 < npix; p0 += tile) {
      const std::int64_t p1 = std::min(p0 + tile, npix);
      for (std::int64_t i = 0; i < n; ++i) {
        const float* plane = a + i * npix;
        for (std::int64_t p = p0; p < p1; ++p) y[p * n + i] = plane[p];
      }
      for (std::int64_t p = p0; p < p1; ++p) {
        float* out = y + p * n;
        if (std::all_of(out, out + n, [](float v) { return v == 0; }))
          std::fill_n(out, n, std::numeric_limits<float>::quiet_NaN());
      }
    }
    return;
  }
  for (std::int64_t oy = 0; oy < rows; ++oy)
    for (std::int64_t ox = 0; ox < g.nx; ++ox) {
      float* out = y + (oy * g.nx + ox) * n;
      bool all_zero = true;
      for (std::int64_t i = 0; i < n; ++i) {
        double s = 0, t = 0;
        for (int dy = 0; dy < B; ++dy)
          for (int dx = 0; dx < B; ++dx) {
            const std::size_t at = std::size_t((i * block_rows + oy * B + dy) * cols_in + ox * B + dx);
            s += a[at];
            if (sigref) t += b[at];
          }
        const double v = sigref ? s / t : s / (B * B);
        out[i] = float(v);
        all_zero = all_zero && s == 0;
      }
      if (all_zero) std::fill_n(out, n, std::numeric_limits<float>::quiet_NaN());
    }
}

std::vector<std::uint8_t> bin_mask(const CubeGeometry& g, std::int64_t rows, const float* m) {
  const std::int64_t cols_in = g.nx * g.bin;
  std::vector<std::uint8_t> mask(std::size_t(rows * g.nx), 0);
  for (std::int64_t oy = 0; oy < rows; ++oy)
    for (std::int64_t ox = 0; ox < g.nx; ++ox)
      for (int dy = 0; dy < g.bin; ++dy)
        for (int dx = 0; dx < g.bin; ++dx)
          if (m[std::size_t((oy * g.bin + dy) * cols_in + ox * g.bin + dx)] != 0)
            mask[std::size_t(oy * g.nx + ox)] = 1;
  return mask;
}

DerivedMaps derived_maps(const ModelSpec& spec) {
  DerivedMaps d;
  if (spec.kind == ModelKind::expression) {
    const auto& src = spec.user->model().source();
    for (const auto& [name, text] : src.derives) {
      d.names.push_back(name);
      d.definition += (d.definition.empty() ? "" : "; ") + name + " = " + text;
    }
    return d;
  }
  if (spec.kind != ModelKind::lorentzian || spec.n_peaks % 2 != 0) return d;
  for (int k = 0; k < spec.n_peaks / 2; ++k) d.names.push_back("bnv" + std::to_string(k));
  d.definition =
      "bnv{k} = (pos{N-1-k} - pos{k}) / (2 * 28.024 MHz/mT), in mT: pair k of "
      "peaks numbered by position from the outside in";
  return d;
}

void derived_values(const ModelSpec& spec, int k, const float* params, std::int64_t n_pix, float* out) {
  const int P = spec.n_params();
  if (spec.kind == ModelKind::expression) {
    std::vector<double> p(static_cast<std::size_t>(P));
    for (std::int64_t q = 0; q < n_pix; ++q) {
      for (int j = 0; j < P; ++j) p[std::size_t(j)] = params[std::size_t(q * P + j)];
      out[q] = float(spec.user->model().derived(k, p));
    }
    return;
  }
  const core::PeakLayout L = spec.layout();
  const int lo = L.pos(k), hi = L.pos(spec.n_peaks - 1 - k);
  for (std::int64_t p = 0; p < n_pix; ++p)
    out[p] = float((params[std::size_t(p * P + hi)] - params[std::size_t(p * P + lo)]) /
                   (2 * nv_gamma_mhz_per_mt));
}

void derived_sigma(const ModelSpec& spec, int k, const float* params, const float* covariance,
                   std::int64_t n_pix, float* out) {
  const int P = spec.n_params(), nc = P * (P + 1) / 2;
  std::vector<double> p(static_cast<std::size_t>(P)), g(static_cast<std::size_t>(P), 0.0);
  if (spec.kind != ModelKind::expression) {  // bnv{k}: (pos_hi - pos_lo) / (2 gamma)
    const core::PeakLayout L = spec.layout();
    g[std::size_t(L.pos(spec.n_peaks - 1 - k))] = 1 / (2 * nv_gamma_mhz_per_mt);
    g[std::size_t(L.pos(k))] = -1 / (2 * nv_gamma_mhz_per_mt);
  }
  for (std::int64_t q = 0; q < n_pix; ++q) {
    if (spec.kind == ModelKind::expression) {
      for (int j = 0; j < P; ++j) p[std::size_t(j)] = params[std::size_t(q * P + j)];
      spec.user->model().derived_gradient(k, p, g.data());
    }
    const float* c = covariance + q * nc;
    double v = 0;
    for (int i = 0; i < P; ++i) {
      if (g[std::size_t(i)] == 0) continue;
      for (int j = 0; j < P; ++j) {
        if (g[std::size_t(j)] == 0) continue;
        v += g[std::size_t(i)] * g[std::size_t(j)] * double(c[i >= j ? core::tri(i, j) : core::tri(j, i)]);
      }
    }
    out[q] = float(std::sqrt(v));
  }
}

}  // namespace tessera::fit

// fit_cube and fit_spectra: the library's whole fit of arrays in memory, a
// block of rows at a time through CubeFitter (fit.cpp), as the command fits
// the slabs it reads.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fit.hpp"
#include "core/fit_types.hpp"
#include "fit/cell_starts.hpp"
#include "fit/cube.hpp"

namespace tessera::api {

namespace {

// Spectra per block of fit_cube: the cancel flag is looked at between blocks,
// and each block's converted input and spectra stay small.
constexpr std::int64_t kBlockPixels = 16384;

void check_shape(const char* what, const Array3& a, const Array3& like) {
  if (a.shape != like.shape)
    throw std::invalid_argument(std::string(what) + " differs in shape from the data");
}

// The input block of output rows [r0, r1) as float [n_sweep][rows][cols], as a
// read of the same block from a file gives it.
std::vector<float> block_as_float(const Array3& a, const fit::Roi& b) {
  const std::int64_t n = a.shape[0], rows = b.y1 - b.y0, cols = b.x1 - b.x0;
  std::vector<float> out(std::size_t(n * rows * cols));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t r = 0; r < rows; ++r)
      convert_to_float(element(a.data, i * a.strides[0] + (b.y0 + r) * a.strides[1] + b.x0 * a.strides[2]),
                       a.type, a.strides[2], cols, out.data() + (i * rows + r) * cols);
  return out;
}

std::vector<float> block_as_float(const Array2& a, const fit::Roi& b) {
  const std::int64_t rows = b.y1 - b.y0, cols = b.x1 - b.x0;
  std::vector<float> out(std::size_t(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    convert_to_float(element(a.data, (b.y0 + r) * a.strides[0] + b.x0 * a.strides[1]), a.type,
                     a.strides[1], cols, out.data() + r * cols);
  return out;
}

// The binned spectra of output rows [r0, r1).
std::vector<float> spectra_of_rows(const FitInput& in, const fit::CubeGeometry& g, std::int64_t r0,
                                   std::int64_t r1) {
  const fit::Roi b = g.input_block(r0, r1);
  const auto a = block_as_float(in.data, b);
  if (!in.ref.present()) return fit::bin_spectra(g, r1 - r0, a.data(), nullptr);
  const auto ref = block_as_float(in.ref, b);
  return fit::bin_spectra(g, r1 - r0, a.data(), ref.data());
}

// The sweep (as the engine takes it, float) and the output grid of a cube,
// after checking the input's shapes and values.
struct CheckedCube {
  std::vector<float> x;
  fit::CubeGeometry g;
};

CheckedCube check_cube(const FitInput& in, const FitOptions& options) {
  if (!in.data.present()) throw std::invalid_argument("no data: the cube [n_sweep, ny, nx] is required");
  if (in.ref.present()) check_shape("ref", in.ref, in.data);
  const std::int64_t n_sweep = in.data.shape[0], ny_in = in.data.shape[1], nx_in = in.data.shape[2];
  if (!in.sweep.present() || in.sweep.shape[0] != n_sweep)
    throw std::invalid_argument("the sweep has " + std::to_string(in.sweep.present() ? in.sweep.shape[0] : 0) +
                                " values but the cube has " + std::to_string(n_sweep) + " sweep points");
  std::vector<double> sweep(static_cast<std::size_t>(n_sweep));
  convert_to_double(in.sweep.data, in.sweep.type, in.sweep.strides[0], n_sweep, sweep.data());
  for (double v : sweep)
    if (!std::isfinite(v)) throw std::invalid_argument("the sweep holds a non-finite value");
  CheckedCube c{std::vector<float>(sweep.begin(), sweep.end()),
                fit::make_geometry(n_sweep, ny_in, nx_in, options.roi, options.bin)};
  if (in.mask.present() && (in.mask.shape[0] != ny_in || in.mask.shape[1] != nx_in))
    throw std::invalid_argument("the mask must be " + std::to_string(ny_in) + " x " + std::to_string(nx_in) +
                                " like the image");
  return c;
}

void check_starts(const FitInput& in, int n_params, const fit::CubeGeometry& g) {
  if (in.start.empty()) return;
  if (std::int64_t(in.start.size()) != n_params)
    throw std::invalid_argument("start: " + std::to_string(in.start.size()) + " maps for " +
                                std::to_string(n_params) + " parameters");
  for (const auto& s : in.start)
    if (s.shape[0] != g.ny || s.shape[1] != g.nx)
      throw std::invalid_argument("start: maps must be " + std::to_string(g.ny) + " x " + std::to_string(g.nx) +
                                  " like the fit");
}

// The automatic start: the band sums of every row (fit/cell_starts.hpp).
void automatic_start(const FitInput& in, const fit::CubeGeometry& g, std::int64_t rows_per_block,
                     const std::atomic<bool>* cancel, CubeFitter& fitter) {
  const fit::CellGrid grid = fitter.start_grid(g.ny, g.nx);
  std::vector<double> sums(static_cast<std::size_t>(g.ny * grid.kx * g.n_sweep));
  std::vector<std::int64_t> counts(static_cast<std::size_t>(g.ny * grid.kx));
  for (std::int64_t r0 = 0; r0 < g.ny; r0 += rows_per_block) {
    throw_if_cancelled(cancel);
    const std::int64_t r1 = std::min(g.ny, r0 + rows_per_block);
    const auto y = spectra_of_rows(in, g, r0, r1);
    fit::band_sums(y.data(), r1 - r0, grid, int(g.n_sweep), sums.data() + r0 * grid.kx * g.n_sweep,
                   counts.data() + r0 * grid.kx);
  }
  fitter.start_from_sums(sums, counts, grid);
}

// The start maps of output rows [r0, r1), [pixel][n_params].
std::vector<float> starts_of_rows(const FitInput& in, int n_params, std::int64_t nx, std::int64_t r0,
                                  std::int64_t r1) {
  std::vector<float> start(static_cast<std::size_t>((r1 - r0) * nx * n_params));
  std::vector<float> row(static_cast<std::size_t>(nx));
  for (int j = 0; j < n_params; ++j)
    for (std::int64_t q = r0; q < r1; ++q) {
      const Array2& s = in.start[std::size_t(j)];
      convert_to_float(element(s.data, q * s.strides[0]), s.type, s.strides[1], nx, row.data());
      for (std::int64_t c = 0; c < nx; ++c) start[std::size_t(((q - r0) * nx + c) * n_params + j)] = row[std::size_t(c)];
    }
  return start;
}

// An empty result of the fitter's model for the grid g.
FitResult empty_result(const CubeFitter& fitter, const fit::CubeGeometry& g) {
  FitResult r;
  r.ny = g.ny;
  r.nx = g.nx;
  r.model = fitter.spec().model_name();
  r.param_names = fitter.param_names();
  r.backend = fitter.backend();
  const fit::DerivedMaps dm = fit::derived_maps(fitter.spec());
  r.derived_names = dm.names;
  r.derived_definition = dm.definition;
  const std::size_t npix = std::size_t(g.ny * g.nx), P = r.param_names.size();
  r.params.assign(P, std::vector<float>(npix));
  r.sigma.assign(P, std::vector<float>(npix));
  r.derived.assign(dm.names.size(), std::vector<float>(npix));
  if (fitter.derived_sigma()) r.derived_sigma.assign(dm.names.size(), std::vector<float>(npix));
  r.chi2.resize(npix);
  r.state.resize(npix);
  r.iterations.resize(npix);
  return r;
}

// Puts the results of the pixels from `at` on (pixel-major) into the maps.
void store(const CubeFitter& fitter, const fit::FitResults& res, std::size_t at, FitResult& r) {
  const int P = res.n_params;
  const std::int64_t npix = std::int64_t(res.chi2.size());
  for (std::int64_t p = 0; p < npix; ++p)
    for (int j = 0; j < P; ++j) {
      r.params[std::size_t(j)][at + std::size_t(p)] = res.params[std::size_t(p * P + j)];
      r.sigma[std::size_t(j)][at + std::size_t(p)] = res.sigma[std::size_t(p * P + j)];
    }
  for (std::size_t k = 0; k < r.derived_names.size(); ++k) {
    fit::derived_values(fitter.spec(), int(k), res.params.data(), npix, r.derived[k].data() + at);
    if (!r.derived_sigma.empty())
      fit::derived_sigma(fitter.spec(), int(k), res.params.data(), res.covariance.data(), npix,
                         r.derived_sigma[k].data() + at);
  }
  std::copy(res.chi2.begin(), res.chi2.end(), r.chi2.begin() + std::ptrdiff_t(at));
  std::copy(res.state.begin(), res.state.end(), r.state.begin() + std::ptrdiff_t(at));
  std::copy(res.iterations.begin(), res.iterations.end(), r.iterations.begin() + std::ptrdiff_t(at));
}

}  // namespace

FitResult fit_cube(const FitInput& in, const FitOptions& options) {
  const CheckedCube c = check_cube(in, options);
  const fit::CubeGeometry& g = c.g;
  CubeFitter fitter(options, c.x);
  const int P = fitter.spec().n_params();
  check_starts(in, P, g);
  if (!options.hold.empty() && in.start.empty())
    throw std::invalid_argument("hold: parameters held at their starts need start maps");
  if (in.weights.present()) {
    check_shape("weights", in.weights, in.data);
    if (options.estimator != "lse") throw std::invalid_argument("weights: only for least squares (--estimator lse)");
    if (g.bin != 1) throw std::invalid_argument("weights: only with --bin 1");
  }
  const std::int64_t rows_per_block = std::max<std::int64_t>(1, kBlockPixels / g.nx);
  if (in.start.empty()) automatic_start(in, g, rows_per_block, options.cancel, fitter);

  FitResult r = empty_result(fitter, g);
  r.param_units = fitter.spec().param_units("sweep unit", in.ref.present() ? "sig/ref" : "data unit");
  r.x_mid = fitter.spec().x_mid;
  for (std::int64_t r0 = 0; r0 < g.ny; r0 += rows_per_block) {
    throw_if_cancelled(options.cancel);
    const std::int64_t r1 = std::min(g.ny, r0 + rows_per_block);
    const auto y = spectra_of_rows(in, g, r0, r1);
    std::vector<std::uint8_t> mask;
    if (in.mask.present()) {
      const auto m = block_as_float(in.mask, g.input_block(r0, r1));
      mask = fit::bin_mask(g, r1 - r0, m.data());
    }
    std::vector<float> start;
    if (!in.start.empty()) start = starts_of_rows(in, P, g.nx, r0, r1);
    std::vector<float> w;
    if (in.weights.present()) {
      FitInput weights_in;  // the weights' block, pixel-major as the spectra
      weights_in.data = in.weights;
      w = spectra_of_rows(weights_in, g, r0, r1);
    }
    const fit::FitResults res = fitter.fit_rows(y.data(), r0, r1 - r0, g.nx, mask.empty() ? nullptr : mask.data(),
                                                in.start.empty() ? nullptr : &start, w.empty() ? nullptr : w.data());
    store(fitter, res, std::size_t(r0 * g.nx), r);
  }
  for (std::int32_t s : r.state)
    if (s >= 0 && s < core::n_fit_states) ++r.state_counts[std::size_t(s)];
  return r;
}

FitResult fit_spectra(const Array2& spectra, const Array1& sweep, const FitOptions& options) {
  if (!spectra.present()) throw std::invalid_argument("no spectra: [n_fits, n_sweep] is required");
  // The batch as a cube of one row: [n_sweep, 1, n_fits].
  FitInput in;
  in.data.data = spectra.data;
  in.data.type = spectra.type;
  in.data.shape = {spectra.shape[1], 1, spectra.shape[0]};
  in.data.strides = {spectra.strides[1], 0, spectra.strides[0]};
  in.sweep = sweep;
  FitOptions o = options;
  o.roi = {};
  o.bin = 1;
  return fit_cube(in, o);
}

}  // namespace tessera::api

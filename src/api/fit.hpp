// The library's pixel-wise fit: a cube [n_sweep, ny, nx] (any numeric type,
// any strides) or a batch of spectra, fitted in memory with the options of
// `tessera fit`, returning the maps that command writes, bit for bit.
//
//   tessera::api::FitOptions o;
//   o.model = "lorentzian";
//   o.peaks = 8;
//   std::string why;
//   if (!o.IsValid(&why)) ...;
//   auto r = tessera::api::fit_cube({.data = Array3::contiguous(cube, {n, ny, nx}),
//                                    .sweep = Array1::contiguous(x, {n})}, o);
//   r.param("pos0"), r.state, r.derived[0] ...
//
// CubeFitter is the engine underneath, which `tessera fit` also drives one slab
// of rows at a time: the start values come from the fit of the mean spectrum of
// the whole image, then each pixel's fit depends on its own spectrum only, so
// any split of the rows (chunks, MPI ranks) gives the same bits.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "api/array.hpp"
#include "api/cancel.hpp"
#include "core/fit_types.hpp"
#include "fit/batch.hpp"
#include "fit/cell_starts.hpp"
#include "fit/cube.hpp"
#include "fit/model_spec.hpp"
#include "fit/user_model.hpp"

namespace tessera::api {

struct Bound {
  double lo, hi;
};

struct FitOptions {
  std::string model = "lorentzian";  // lorentzian, gaussian, stretched_exp, damped_cosine
  int peaks = 2;                     // peak models: 1..core::max_peaks
  std::string background = "constant";  // peak models: constant or linear (adds `slope`)
  // A model of the user's own instead of `model`: its value at the sweep value
  // x (fit/expr.hpp), its parameters in output order, named constants, and a
  // start value for every parameter (the mean spectrum's fit starts there).
  // Compiled at run time into the engine (fit/user_model.hpp).
  // `model` may also name a shipped model file (esr14n, ...: fit/model_file.hpp),
  // and model_file give one; then consts and start override the file's by
  // name, and derive adds to its derived maps.
  std::string expr;
  std::vector<std::string> params;
  std::vector<std::pair<std::string, double>> consts;
  std::vector<std::pair<std::string, double>> start;
  std::string model_file;
  std::vector<std::pair<std::string, std::string>> derive;  // name, expression of the parameters
  std::vector<std::pair<std::string, double>> fix;    // parameter name, value
  std::vector<std::pair<std::string, Bound>> bounds;  // parameter name, [lo, hi]
  // Parameters held at each pixel's own start value (FitInput::start), not
  // fitted: Gpufit's parameters_to_fit = 0. Needs start maps.
  std::vector<std::string> hold;
  std::string estimator = "lse";     // lse (least squares) or mle (Poisson likelihood)
  int max_iter = 100;
  double tol = 1e-6;
  int threads = 0;                   // 0: the cores this process may run on
  std::string backend = "cpu";       // cpu, cuda, or auto (the GPU when one is visible)
  int device = -1;                   // CUDA device; -1: device 0
  std::string gpu_kernel = "auto";   // CUDA: auto, thread or warp (per fit)
  fit::Roi roi;                      // whole image when all zero
  int bin = 1;                       // output pixel = mean of bin x bin input pixels
  // Called from worker threads with the number of spectra just finished.
  std::function<void(std::int64_t)> progress;
  // Checked between blocks of rows and, while fitting, every few hundred
  // spectra per thread; when it becomes true the call throws Cancelled.
  const std::atomic<bool>* cancel = nullptr;

  // The checks that need no data (names, ranges of numbers); false with a
  // one-line message in *why.
  bool IsValid(std::string* why) const;
};

struct FitInput {
  Array3 data;   // [n_sweep, ny, nx]: the spectra, or the signal frames when ref is given
  Array3 ref;    // optional reference frames, same shape: fitted as sig/ref
  Array1 sweep;  // [n_sweep]
  Array2 mask;   // optional [ny, nx] of the input image: nonzero = skip (state masked)
  // Optional start values, one [ny, nx] map of the OUTPUT grid per parameter (a
  // previous fit's /params maps); empty: automatic starts. A NaN start gives state bad_start.
  std::vector<Array2> start;
  // Optional weights, same shape as data: each point's 1/sigma^2 (least squares
  // only, bin 1). A point with weight 0 does not count.
  Array3 weights;
};

struct FitResult {
  std::int64_t ny = 0, nx = 0;  // the output grid (after region and binning)
  std::string model;
  std::vector<std::string> param_names;
  // Units as the command writes them when the input names none: "sweep unit",
  // "data unit" (or "sig/ref"), and what the model makes of them.
  std::vector<std::string> param_units;
  double x_mid = 0;  // peak models: the origin of the slope term
  std::vector<std::vector<float>> params, sigma;  // per parameter, [ny * nx] row-major
  std::vector<float> chi2;
  std::vector<std::int32_t> state, iterations;
  std::vector<std::string> derived_names;
  std::vector<std::vector<float>> derived;  // per derived map, [ny * nx]
  // Their one-sigma maps through the fit's whole covariance (after a GPU fit,
  // evaluated on the CPU at the GPU's parameters: fit::covariance_at).
  std::vector<std::vector<float>> derived_sigma;
  std::string derived_definition;
  std::array<std::int64_t, core::n_fit_states> state_counts{};
  std::string backend;  // what ran: cpu or cuda

  // The map of a parameter by name; throws std::out_of_range for an unknown name.
  const std::vector<float>& param(const std::string& name) const;
};

// Fits every pixel of the cube. Throws std::invalid_argument with a one-line
// message for bad options or input (shapes, a non-finite sweep, no pixel with
// data), Cancelled when options.cancel is set.
FitResult fit_cube(const FitInput& input, const FitOptions& options);

// Fits a batch of spectra [n_fits, n_sweep] (automatic starts from their mean
// spectrum, as for a cube); the result is a 1 x n_fits grid.
FitResult fit_spectra(const Array2& spectra, const Array1& sweep, const FitOptions& options);

// Whether `name` is one of the models compiled into tessera (lorentzian, ...).
bool is_builtin_model(const std::string& name);
// The model of the user's own that options describe (options.expr, a model
// file, or a shipped model's name), checked, its overrides applied.
fit::UserModelDescription describe_user_model(const FitOptions& options);
// The model of the user's own that options describe, checked,
// compiled (or taken from the model cache) and loaded. Throws
// std::invalid_argument (a start missing, a bad expression, a compile error).
std::shared_ptr<const fit::CompiledModel> user_model(const FitOptions& options);

// The engine of fit_cube and of `tessera fit`: the options checked against the
// model and sweep, the backend bound, then rows of spectra fitted.
class CubeFitter {
 public:
  // Throws std::invalid_argument for bad options or sweep. backend "auto"
  // takes the GPU when the build has one and this process sees a device.
  CubeFitter(const FitOptions& options, std::span<const float> sweep);
  ~CubeFitter();
  CubeFitter(const CubeFitter&) = delete;
  CubeFitter& operator=(const CubeFitter&) = delete;

  // Binds another backend ("cpu", "cuda" or "auto", and the CUDA device),
  // as the constructor binds options.backend: a command agrees on the
  // backend across its ranks only after the options have been checked.
  void use_backend(const std::string& backend, int device);

  const fit::ModelSpec& spec() const;
  const std::vector<std::string>& param_names() const;
  const std::string& backend() const;  // "cpu" or "cuda"
  // The GPU kernel that runs ("thread per fit" or "warp per fit"); "" on the CPU.
  std::string gpu_kernel() const;
  // Whether fit_rows returns each fit's covariance, from which the derived
  // maps' uncertainties come (when the model has derived maps; on the GPU
  // backend computed on the CPU at the fitted parameters).
  bool derived_sigma() const;
  // Replaces options.progress (called from worker threads with spectra finished).
  void set_progress(std::function<void(std::int64_t)> progress);

  // The automatic start. start_grid is the grid whose per-row band sums it
  // needs (fit::band_sums of every output row): one cell for the built-in
  // models, which then search each pixel's spectrum from the mean's fit;
  // cells for the models of the user's own, which start each pixel from its
  // cell's fit and refit pixels clearly worse than their row neighbours
  // (fit/cell_starts.hpp). start_from_sums takes the sums of ALL ny rows, in
  // row order (the same on every rank), fits the mean spectrum (and the
  // cells). Throws std::invalid_argument when the image has no finite pixel.
  fit::CellGrid start_grid(std::int64_t ny, std::int64_t nx) const;
  void start_from_sums(std::span<const double> sum, std::span<const std::int64_t> count,
                       const fit::CellGrid& grid);

  // Fits the spectra of `rows` whole output rows of nx pixels from output row
  // row0 on, pixel-major [pixel][n_sweep]. mask: null or [pixel], nonzero =
  // skip. start: null for the automatic start (start_from_sums first), or
  // [pixel][n_params] values (fixed parameters are set to their values here,
  // held ones keep the start's). weights: null or [pixel][n_sweep] (1/sigma^2).
  fit::FitResults fit_rows(const float* y, std::int64_t row0, std::int64_t rows, std::int64_t nx,
                           const std::uint8_t* mask, std::vector<float>* start,
                           const float* weights = nullptr);
  // How many pixels the automatic start has fitted again so far, from their row
  // neighbours', their cells' or the model's own search's starts.
  std::int64_t refitted() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::api

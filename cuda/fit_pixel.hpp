// What one CUDA thread does: fit one spectrum of a sweep-major chunk with
// tessera::core::lm_fit<float> and write its results. Written as a TESSERA_HD
// function, so the kernel (fit_kernels.cuh) is a thin loop over it and the CPU
// tests run the very same per-spectrum code without a GPU
// (tests/cuda/test_fit_pixel.cpp). No CUDA header is needed here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "core/fit_input.hpp"
#include "core/fit_types.hpp"
#include "core/hd.hpp"
#include "core/lm.hpp"
#include "fit_cuda.hpp"

namespace tessera::cuda {

// A chunk of spectra in the layout the fit reads: sweep-major, so that the
// threads of a warp, which fit neighbouring spectra, read neighbouring
// addresses at every sweep point (one coalesced load per point).
struct SpectraChunk {
  const float* x;            // [n_points]
  int n_points;
  int n;                     // spectra in this chunk (<= 2^30); offsets are 64-bit
  const float* y;            // [n_points][n]
  const float* w;            // [n_points][n] or nullptr
  const std::uint8_t* mask;  // [n] or nullptr; nonzero = skip
  const float* start;        // [n][P]
  float* params;             // [n][P]
  float* sigma;              // [n][P]
  float* chi2;               // [n]
  std::int32_t* state;       // [n]
  std::int32_t* iterations;  // [n]
};

// The LM configuration of a P-parameter model from the plain description.
template <int P> core::LMConfig<float, P> make_lm_config(const FitConfigDesc& desc) {
  core::LMConfig<float, P> cfg;
  for (int j = 0; j < P; ++j) {
    cfg.free[j] = !desc.fixed[j];
    cfg.lo[j] = desc.lo[j];
    cfg.hi[j] = desc.hi[j];
  }
  cfg.max_iter = desc.max_iter;
  cfg.ftol = desc.tol;
  cfg.xtol = desc.tol;
  cfg.estimator = desc.estimator;
  return cfg;
}

// A spectrum that is not fitted: its state and NaN numbers, never a silent value.
template <int P>
TESSERA_HD void write_unfitted(const SpectraChunk& c, int pix, core::FitState s) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int j = 0; j < P; ++j) {
    c.params[std::size_t(pix) * P + j] = nan;
    c.sigma[std::size_t(pix) * P + j] = nan;
  }
  c.chi2[pix] = nan;
  c.state[pix] = core::state_value(s);
  c.iterations[pix] = 0;
}

// The checks before a fit, by the rule of both backends (core::accept_spectrum):
// masked and non-finite spectra are not fitted (their results are written
// here, and the function returns false).
template <int P>
TESSERA_HD bool accept_input(const core::LMConfig<float, P>& cfg, const SpectraChunk& c, int pix) {
  const bool use_w = c.w && cfg.estimator == core::Estimator::lse;
  core::FitState unfitted;
  if (core::accept_spectrum(c.mask && c.mask[pix], c.y + pix, use_w ? c.w + pix : nullptr, c.n_points, c.n,
                            &unfitted))
    return true;
  write_unfitted<P>(c, pix, unfitted);
  return false;
}

// Spectrum `pix` of the chunk as the engine reads it (stride: the chunk's width).
template <int P>
TESSERA_HD core::LMData<float> pixel_data(const core::LMConfig<float, P>& cfg,
                                          const SpectraChunk& c, int pix) {
  const bool use_w = c.w && cfg.estimator == core::Estimator::lse;
  core::LMData<float> d;
  d.x = c.x;
  d.y = c.y + pix;
  d.w = use_w ? c.w + pix : nullptr;
  d.n = c.n_points;
  d.stride = c.n;
  return d;
}

// Writes a finished fit; only converged and iteration-limit fits report a
// chi-square.
template <int P>
TESSERA_HD void store_fit(const SpectraChunk& c, int pix, const core::LMResult<float, P>& r) {
  const bool fitted =
      r.state == core::FitState::converged || r.state == core::FitState::iteration_limit;
  for (int j = 0; j < P; ++j) {
    c.params[std::size_t(pix) * P + j] = r.params[j];
    c.sigma[std::size_t(pix) * P + j] = r.sigma[j];
  }
  c.chi2[pix] = fitted ? r.chi2 : std::numeric_limits<float>::quiet_NaN();
  c.state[pix] = core::state_value(r.state);
  c.iterations[pix] = r.iterations;
}

// Fits spectrum `pix` of the chunk (one thread per fit).
template <class Model>
TESSERA_HD void fit_pixel(const Model& model, const core::LMConfig<float, Model::n_params>& cfg,
                          const SpectraChunk& c, int pix) {
  constexpr int P = Model::n_params;
  if (!accept_input<P>(cfg, c, pix)) return;
  float p0[P];
  for (int j = 0; j < P; ++j) p0[j] = c.start[std::size_t(pix) * P + j];
  store_fit<P>(c, pix, core::lm_fit<P>(model, pixel_data<P>(cfg, c, pix), cfg, p0));
}

}  // namespace tessera::cuda

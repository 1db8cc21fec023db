// Realistic synthetic cubes with their ground truth, for `tessera simulate`, the
// demo and the end-to-end tests. Pure computation (no I/O); deterministic for a
// given seed.
//
// ODMR: NV-centre spin resonances f = D +/- gamma |B . n| for the four <111> axes
// (8 peaks) or for the axis along the bias field (2 peaks), D = 2870 MHz,
// gamma = 28.024 MHz/mT. The field is a bias plus a linear gradient across the image
// plus the field of a magnetic dipole below the image centre, so the peaks move
// across the image. Dead pixels (all zero) and saturated pixels (constant) are
// scattered in. Optional photon-count frames: ref ~ Poisson(N), sig ~ Poisson(N f).
// T1: stretched exponentials whose t1 varies by `t1_ratio` across the image.
// Rabi: damped cosines whose frequency varies by `freq_ratio` across the image.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model_spec.hpp"
#include "nv.hpp"

namespace tessera::fit {

struct SimOptions {
  int ny = 64, nx = 64;
  int n_sweep = 0;     // 0: the model's default (201 ODMR, 60 T1, 120 Rabi)
  int n_peaks = 8;     // ODMR: 2 or 8
  double noise = 2e-3; // Gaussian noise on normalised data (ignored with photons)
  double photons = 0;  // > 0: Poisson sig/ref frames with this many counts per point
  double contrast = 0.01;
  double fwhm = 9.0;         // MHz
  double bias_mt = 4.0;      // ODMR bias field magnitude (8 peaks 24 MHz apart)
  double gradient_mhz = 10;  // ODMR: how far the outer peaks move across the image
  double dipole_mhz = 4;     // ODMR: peak shift of the dipole feature at its centre
  double bad_fraction = 0.002;  // dead and saturated pixels, each
  double t1_ratio = 3;       // T1: largest over smallest t1 across the image
  double freq_ratio = 2;     // Rabi: largest over smallest frequency
  std::uint64_t seed = 1;
};

struct SimCube {
  ModelSpec spec;
  std::string x_unit, y_unit;
  std::vector<float> sweep;       // [n_sweep]
  std::vector<float> data;        // [n_sweep][ny][nx]: normalised signal
  std::vector<float> sig, ref;    // [n_sweep][ny][nx] photon counts, when photons > 0
  std::vector<float> truth;       // [n_params][ny][nx], NaN at dead and saturated pixels
  std::vector<float> bnv;         // ODMR: [n_peaks / 2][ny][nx] field along each axis, mT
  int ny = 0, nx = 0;
  int n_sweep() const { return int(sweep.size()); }
};

// kind: "odmr", "t1" or "rabi"; throws std::invalid_argument on bad options.
SimCube simulate(const std::string& kind, const SimOptions& options);

}  // namespace tessera::fit

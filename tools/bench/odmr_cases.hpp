// The two ODMR benchmark cases and their simulation: ground-truth parameters per
// pixel, noisy spectra (float, as a camera cube would hold them) and the start
// values that both solvers receive. Parameter order is tessera's: offset, then
// per dip pos, fwhm, amp, dips sorted by position.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/peak_layout.hpp"

namespace tessera::bench {

enum class CaseId { a, b };

struct OdmrCase {
  CaseId id = CaseId::a;
  const char* label = "";        // "A", "B"
  const char* description = "";  // one line for the table
  int n_peaks = 2;
  std::vector<float> sweep;  // MHz
  std::int64_t default_pixels = 0;        // tessera, per timed pass
  std::int64_t default_ceres_pixels = 0;  // Ceres, also the pixels whose accuracy is compared

  int n_params() const { return 1 + 3 * n_peaks; }
  int n_points() const { return static_cast<int>(sweep.size()); }
};

// A: 2 dips + offset, 100 points over 2800..2940 MHz, splitting 20..80 MHz over the pixels.
OdmrCase case_a();
// B: 8 dips (4 NV orientations) + offset, 241 points over 2700..3040 MHz.
OdmrCase case_b();

struct SimulatedCube {
  std::int64_t n_pix = 0;
  int n_params = 0;
  int n_points = 0;
  std::vector<double> truth;  // [n_pix][n_params]
  std::vector<float> start;   // [n_pix][n_params]
  std::vector<float> y;       // [n_pix][n_points]
};

inline constexpr double noise_sigma = 2e-3;

// The cases' parameter layout: offset, then pos, fwhm, amp per dip (no slope).
inline constexpr int pos_index(int k) { return core::PeakLayout::n_params(k, false); }
inline constexpr int fwhm_index(int k) { return pos_index(k) + 1; }
inline constexpr int amp_index(int k) { return pos_index(k) + 2; }

// Deterministic for a given seed: pixel i gets the same truth, start and noise
// whatever n_pix is (the noise stream is drawn pixel after pixel).
SimulatedCube simulate(const OdmrCase& c, std::int64_t n_pix, std::uint64_t seed);

// offset + sum_k amp_k / (1 + u_k^2), u_k = 2 (x - pos_k) / fwhm_k (src/core/models/peaks.hpp).
double lorentzian_dips(std::span<const double> p, int n_peaks, double x);

// Cramer-Rao bound (variance) of every dip centre of one pixel at its true
// parameters for Gaussian noise noise_sigma: diag((J^T J)^-1) sigma^2 at the positions.
std::vector<double> centre_crb_variance(const OdmrCase& c, std::span<const double> truth);

}  // namespace tessera::bench

// Synthetic spectra for the fit tests: model values from the double-precision
// evaluation of src/fit (model_values), plus seeded noise.
#pragma once

#include <random>
#include <vector>

#include "fit/batch.hpp"

namespace tessera::test {

inline std::vector<float> linspace(double a, double b, int n) {
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = float(a + (b - a) * i / (n - 1));
  return x;
}

inline std::vector<double> as_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Appends one spectrum f(x; truth) + N(0, sigma) to y.
inline void append_spectrum(const fit::ModelSpec& spec, const std::vector<double>& truth,
                            const std::vector<float>& x, double sigma, std::mt19937_64& rng,
                            std::vector<float>& y) {
  const auto f = fit::model_values(spec, truth, as_double(x));
  std::normal_distribution<double> noise(0.0, sigma);
  for (double v : f) y.push_back(float(sigma > 0 ? v + noise(rng) : v));
}

// ODMR-like truth: offset 1, n_peaks dips of 1 % contrast and 9 MHz width,
// spaced `spacing` MHz apart around `centre`.
inline std::vector<double> odmr_truth(int n_peaks, double centre, double spacing) {
  std::vector<double> t{1.0};
  for (int k = 0; k < n_peaks; ++k) {
    t.push_back(centre + spacing * (k - 0.5 * (n_peaks - 1)));
    t.push_back(9.0);
    t.push_back(-0.01);
  }
  return t;
}

}  // namespace tessera::test

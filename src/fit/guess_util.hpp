// Internal to src/fit/guess*: the sweep in ascending order, smoothing,
// percentiles, small linear least squares, line shapes and a deterministic
// parallel loop over pixels. Included only by guess.cpp and guess_peaks.hpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <thread>
#include <vector>

#include "core/fit_input.hpp"
#include "core/threads.hpp"
#include "model_spec.hpp"

namespace tessera::fit::guess_detail {

inline constexpr double pi = 3.14159265358979323846;
inline constexpr double ln2 = 0.69314718055994530942;

// The sweep in ascending order, shared by every pixel of a cube.
struct Sweep {
  int n = 0;
  std::vector<int> order;  // indices of x in ascending order
  std::vector<double> x;   // x[order[i]]
  double lo = 0, hi = 0, span = 1, dx = 1;  // dx: median positive spacing
  bool uniform = false;  // x[i] = lo + i * span / (n - 1) to 1e-3 of a spacing
};

inline Sweep make_sweep(std::span<const float> x) {
  Sweep s;
  s.n = int(x.size());
  s.order.resize(s.n);
  std::iota(s.order.begin(), s.order.end(), 0);
  std::stable_sort(s.order.begin(), s.order.end(), [&](int a, int b) { return x[a] < x[b]; });
  for (int i : s.order) s.x.push_back(x[i]);
  s.lo = s.x.front();
  s.hi = s.x.back();
  if (s.hi > s.lo) s.span = s.hi - s.lo;
  std::vector<double> d;
  for (int i = 1; i < s.n; ++i)
    if (s.x[i] > s.x[i - 1]) d.push_back(s.x[i] - s.x[i - 1]);
  if (!d.empty()) {
    std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
    s.dx = d[d.size() / 2];
  } else {
    s.dx = s.span;
  }
  if (s.n > 1 && s.hi > s.lo) {
    const double step = (s.hi - s.lo) / (s.n - 1);
    s.uniform = true;
    for (int i = 0; i < s.n; ++i) s.uniform &= std::abs(s.x[i] - (s.lo + i * step)) <= 1e-3 * step;
  }
  return s;
}

// One spectrum in the sweep's ascending order, in double.
inline std::vector<double> gather(const Sweep& s, const float* y) {
  std::vector<double> v(s.n);
  for (int i = 0; i < s.n; ++i) v[i] = y[s.order[i]];
  return v;
}

using core::all_finite;

// Light smoothing: binomial 1-4-6-4-1 weights, renormalised at the ends.
inline std::vector<double> smooth5(const std::vector<double>& v) {
  const int n = int(v.size());
  static constexpr double w[5] = {1, 4, 6, 4, 1};
  std::vector<double> out(n);
  for (int i = 0; i < n; ++i) {
    double s = 0, ws = 0;
    for (int k = -2; k <= 2; ++k)
      if (i + k >= 0 && i + k < n) {
        s += w[k + 2] * v[i + k];
        ws += w[k + 2];
      }
    out[i] = s / ws;
  }
  return out;
}

inline double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double t = q * double(v.size() - 1);
  const size_t i = size_t(t);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (t - double(i)) * (v[i + 1] - v[i]);
}

// Linear least squares min ||v - sum_j c_j B_j||^2 for m <= 12 columns B_j
// (stored as rows of B, n points each) by the normal equations, equilibrated,
// with partial pivoting. Returns chi2, or NaN when the columns are dependent.
inline double lstsq(const double* B, int m, int n, const double* v, double* c) {
  // The normal equations from dot products of the basis rows (contiguous, eight
  // lanes of partial sums in a fixed order), the upper triangle and the right-hand
  // side; the lower triangle mirrors it.
  auto dot = [n](const double* a, const double* b) {
    typedef double v4 __attribute__((vector_size(32)));
    v4 acc0 = {0, 0, 0, 0}, acc1 = acc0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      v4 x0, x1, y0, y1;
      std::memcpy(&x0, a + i, sizeof x0);
      std::memcpy(&x1, a + i + 4, sizeof x1);
      std::memcpy(&y0, b + i, sizeof y0);
      std::memcpy(&y1, b + i + 4, sizeof y1);
      acc0 += x0 * y0;
      acc1 += x1 * y1;
    }
    const v4 acc = acc0 + acc1;
    double sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; i < n; ++i) sum += a[i] * b[i];
    return sum;
  };
  double A[12][13];
  for (int j = 0; j < m; ++j) {
    for (int k = j; k < m; ++k) A[j][k] = dot(B + std::size_t(j) * n, B + std::size_t(k) * n);
    A[j][m] = dot(B + std::size_t(j) * n, v);
    for (int k = 0; k < j; ++k) A[j][k] = A[k][j];
  }
  double scale[12];
  for (int j = 0; j < m; ++j) {
    if (!(A[j][j] > 0)) return std::numeric_limits<double>::quiet_NaN();
    scale[j] = 1 / std::sqrt(A[j][j]);
  }
  for (int j = 0; j < m; ++j) {
    for (int k = 0; k < m; ++k) A[j][k] *= scale[j] * scale[k];
    A[j][m] *= scale[j];
  }
  for (int col = 0; col < m; ++col) {
    int piv = col;
    for (int r = col + 1; r < m; ++r)
      if (std::abs(A[r][col]) > std::abs(A[piv][col])) piv = r;
    if (!(std::abs(A[piv][col]) > 1e-11)) return std::numeric_limits<double>::quiet_NaN();
    if (piv != col)
      for (int k = 0; k <= m; ++k) std::swap(A[col][k], A[piv][k]);
    for (int r = col + 1; r < m; ++r) {
      const double f = A[r][col] / A[col][col];
      for (int k = col; k <= m; ++k) A[r][k] -= f * A[col][k];
    }
  }
  for (int j = m - 1; j >= 0; --j) {
    double s = A[j][m];
    for (int k = j + 1; k < m; ++k) s -= A[j][k] * c[k];
    c[j] = s / A[j][j];
  }
  for (int j = 0; j < m; ++j) c[j] *= scale[j];
  // chi2 = sum_i (v_i - f_i)^2 in point order, f_i = sum_j c_j B_ji in basis
  // order; the f of four points at a time (vector lanes, each in the same
  // order), so only the chi2 sum remains a chain of dependent adds.
  typedef double v4 __attribute__((vector_size(32)));
  double chi2 = 0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v4 f = {0, 0, 0, 0};
    for (int j = 0; j < m; ++j) {
      v4 b;
      std::memcpy(&b, B + std::size_t(j) * n + i, sizeof b);
      f += c[j] * b;
    }
    v4 y;
    std::memcpy(&y, v + i, sizeof y);
    const v4 d = y - f, d2 = d * d;
    chi2 += d2[0];
    chi2 += d2[1];
    chi2 += d2[2];
    chi2 += d2[3];
  }
  for (; i < n; ++i) {
    double f = 0;
    for (int j = 0; j < m; ++j) f += c[j] * B[std::size_t(j) * n + i];
    chi2 += (v[i] - f) * (v[i] - f);
  }
  return chi2;
}

inline double line_shape(bool gauss, double u) {
  return gauss ? std::exp(-ln2 * u * u) : 1.0 / (1.0 + u * u);
}

// Where the peak parameters are (core/peak_layout.hpp): peak k's pos, fwhm and
// amp at first_peak(s) + per_peak * k + 0, 1, 2.
inline int first_peak(const ModelSpec& s) { return s.layout().first_peak(); }
inline constexpr int per_peak = core::PeakLayout::per_peak;

// Calls f(pixel) for every pixel, 16 at a time, on `threads` threads (0: the
// cores this process may use); the pixels are independent, so the result does
// not depend on the thread count.
template <class F> void parallel_pixels(std::int64_t n_pix, int threads, F&& f) {
  core::parallel_for(n_pix, threads, 16, f);
}

}  // namespace tessera::fit::guess_detail

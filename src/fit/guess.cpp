#include "guess.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <stdexcept>

#include "guess_peaks.hpp"
#include "guess_util.hpp"

namespace tessera::fit {
namespace {

using namespace guess_detail;

// Peaks in order of position and positive widths; a cosine's amplitude
// positive and its phase in [-pi, pi].
void normalise(const ModelSpec& spec, double* p) {
  if (spec.is_peak_model()) {
    const int f = first_peak(spec);
    std::vector<std::array<double, 3>> pk(spec.n_peaks);
    for (int k = 0; k < spec.n_peaks; ++k)
      pk[k] = {p[f + 3 * k], std::abs(p[f + 3 * k + 1]), p[f + 3 * k + 2]};
    std::stable_sort(pk.begin(), pk.end(), [](const auto& a, const auto& b) { return a[0] < b[0]; });
    for (int k = 0; k < spec.n_peaks; ++k)
      for (int j = 0; j < 3; ++j) p[f + 3 * k + j] = pk[k][j];
  } else if (spec.kind == ModelKind::damped_cosine) {
    if (p[1] < 0) {
      p[1] = -p[1];
      p[4] += pi;
    }
    p[4] = std::remainder(p[4], 2 * pi);
  }
}

// Fixed parameters from `fixed` (when given), every parameter into its bounds.
void constrain(const FitOptions& o, std::span<const double> fixed, double* p, int P) {
  if (o.constraints.empty()) return;
  for (int j = 0; j < P; ++j) {
    const ParamConstraint& c = o.constraints[j];
    if (c.fixed && !fixed.empty()) p[j] = fixed[j];
    p[j] = std::min(std::max(p[j], c.lo), c.hi);
  }
}

// A finite start of the right shape for a cube without a single finite pixel.
std::vector<double> default_start(const ModelSpec& spec, const Sweep& sw) {
  switch (spec.kind) {
    case ModelKind::stretched_exp: return {0, 1, sw.span / 3, 1};
    case ModelKind::damped_cosine: return {0, 1, sw.span, 2 / sw.span, 0};
    default: break;
  }
  std::vector<double> p(spec.n_params(), 0.0);
  p[0] = 1;
  for (int k = 0; k < spec.n_peaks; ++k) {
    const int b = first_peak(spec) + 3 * k;
    p[b] = sw.lo + sw.span * (k + 1) / (spec.n_peaks + 1);
    p[b + 1] = sw.span / (4 * spec.n_peaks);
    p[b + 2] = -0.01;
  }
  return p;
}

// ---- stretched exponential ---------------------------------------------------------
// Offset from the tail, amplitude from the first points, T1 where the smoothed
// decay crosses 1/e of its amplitude; then T1 on a log grid (1/8 to 8 times
// that) with offset and amplitude by linear least squares at the given beta.
void stretched_quick(const Sweep& sw, const std::vector<double>& v, double beta, double* out) {
  const int n = sw.n;
  const int nt = std::max(3, n / 10), nf = std::max(1, std::min(3, n / 20));
  double off = 0, amp = 0;
  for (int i = n - nt; i < n; ++i) off += v[i] / nt;
  for (int i = 0; i < nf; ++i) amp += v[i] / nf;
  amp -= off;
  const double top = std::max(sw.hi, sw.span);
  double t1 = 2 * top;
  const auto sm = smooth5(v);
  if (amp != 0) {
    double q_prev = 1;
    for (int i = 0; i < n; ++i) {
      const double q = (sm[i] - off) / amp;
      if (q <= 1 / std::exp(1.0)) {
        t1 = i == 0 ? sw.x[0]
                    : sw.x[i - 1] + (q_prev - 1 / std::exp(1.0)) / (q_prev - q) * (sw.x[i] - sw.x[i - 1]);
        break;
      }
      q_prev = q;
    }
  }
  t1 = std::clamp(t1, std::max(sw.dx / 4, 1e-6 * top), 10 * top);
  constexpr int K = 48;
  std::vector<double> chi(K + 1), B(2 * n);
  double c[2];
  auto eval = [&](double t) {
    for (int i = 0; i < n; ++i) {
      B[i] = 1;
      B[n + i] = sw.x[i] > 0 ? std::exp(-std::pow(sw.x[i] / t, beta)) : 1.0;
    }
    const double x2 = lstsq(B.data(), 2, n, v.data(), c);
    return std::isfinite(x2) ? x2 : std::numeric_limits<double>::infinity();
  };
  auto grid = [&](double k) { return t1 * std::pow(8.0, (k - K / 2) / (K / 2)); };
  int kb = 0;
  for (int k = 0; k <= K; ++k) {
    chi[k] = eval(grid(k));
    if (chi[k] < chi[kb]) kb = k;
  }
  double kr = kb;
  if (kb > 0 && kb < K && std::isfinite(chi[kb - 1]) && std::isfinite(chi[kb + 1])) {
    const double den = chi[kb - 1] - 2 * chi[kb] + chi[kb + 1];
    if (den > 0) kr += std::clamp(0.5 * (chi[kb - 1] - chi[kb + 1]) / den, -0.5, 0.5);
  }
  t1 = grid(kr);
  if (std::isfinite(eval(t1))) {
    off = c[0];
    amp = c[1];
  }
  out[0] = off;
  out[1] = amp;
  out[2] = t1;
  out[3] = beta;
}

// ---- damped cosine -----------------------------------------------------------------
// Frequency from the strongest peaks of a DFT over the (possibly non-uniform)
// sweep, four times oversampled, from half a cycle per span to the Nyquist
// frequency of the median spacing; then, at each of the three strongest peaks
// and a quarter-bin either side, offset + exp(-x/tau) (a cos + b sin) by linear
// least squares on a tau grid: the best gives tau, amp = |(a, b)| and phase.
struct CosineSearch {
  const Sweep& sw;
  double df;
  int j0, j1;
  std::vector<float> C, S;              // DFT table [j1 - j0 + 1][n], when small enough
  std::vector<double> taus;             // the grid; the last entry means no decay
  std::vector<std::vector<double>> E;   // exp(-x / tau) per grid entry

  explicit CosineSearch(const Sweep& s) : sw(s), df(1 / (4 * s.span)), j0(2) {
    j1 = std::max(j0, int(std::floor(0.5 / s.dx / df)));
    const size_t rows = size_t(j1 - j0 + 1);
    if (rows * s.n <= (size_t(1) << 22)) {
      C.resize(rows * s.n);
      S.resize(rows * s.n);
      for (size_t j = 0; j < rows; ++j)
        for (int i = 0; i < s.n; ++i) {
          const double ph = 2 * pi * (j0 + double(j)) * df * s.x[i];
          C[j * s.n + i] = float(std::cos(ph));
          S[j * s.n + i] = float(std::sin(ph));
        }
    }
    for (int k = -8; k <= 8; ++k) taus.push_back(s.span * std::pow(2.0, 0.5 * k));
    taus.push_back(100 * s.span);
    for (double t : taus) {
      std::vector<double> e(s.n);
      for (int i = 0; i < s.n; ++i) e[i] = t >= 100 * s.span ? 1.0 : std::exp(-(s.x[i] - s.lo) / t);
      E.push_back(std::move(e));
    }
  }

  double power(const std::vector<double>& r, int j) const {
    double re = 0, im = 0;
    if (!C.empty()) {
      const float* c = C.data() + size_t(j - j0) * sw.n;
      const float* s = S.data() + size_t(j - j0) * sw.n;
      for (int i = 0; i < sw.n; ++i) {
        re += r[i] * c[i];
        im += r[i] * s[i];
      }
    } else {
      for (int i = 0; i < sw.n; ++i) {
        const double ph = 2 * pi * j * df * sw.x[i];
        re += r[i] * std::cos(ph);
        im += r[i] * std::sin(ph);
      }
    }
    return re * re + im * im;
  }

  void run(const std::vector<double>& v, double* out) const {
    const int n = sw.n;
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
    std::vector<double> r(n), pw(j1 - j0 + 1);
    for (int i = 0; i < n; ++i) r[i] = v[i] - mean;
    for (int j = j0; j <= j1; ++j) pw[j - j0] = power(r, j);
    std::vector<int> peaks;
    for (int j = 0; j <= j1 - j0; ++j)
      if ((j == 0 || pw[j] >= pw[j - 1]) && (j == j1 - j0 || pw[j] >= pw[j + 1])) peaks.push_back(j);
    std::stable_sort(peaks.begin(), peaks.end(), [&](int a, int b) { return pw[a] > pw[b]; });
    if (peaks.size() > 3) peaks.resize(3);
    double best = std::numeric_limits<double>::infinity();
    out[0] = mean;
    out[1] = 0;
    out[2] = sw.span;
    out[3] = (j0 + (peaks.empty() ? 0 : peaks[0])) * df;
    out[4] = 0;
    std::vector<double> B(3 * n), cs(n), sn(n);
    for (int j : peaks) {
      double f0 = (j0 + j) * df;
      if (j > 0 && j < j1 - j0) {
        const double den = pw[j - 1] - 2 * pw[j] + pw[j + 1];
        if (den < 0) f0 += df * std::clamp(0.5 * (pw[j - 1] - pw[j + 1]) / den, -0.5, 0.5);
      }
      for (double f : {f0 - 0.25 * df, f0, f0 + 0.25 * df}) {
        for (int i = 0; i < n; ++i) {
          cs[i] = std::cos(2 * pi * f * sw.x[i]);
          sn[i] = std::sin(2 * pi * f * sw.x[i]);
        }
        for (size_t t = 0; t < taus.size(); ++t) {
          for (int i = 0; i < n; ++i) {
            B[i] = 1;
            B[n + i] = E[t][i] * cs[i];
            B[2 * n + i] = E[t][i] * sn[i];
          }
          double c[3];
          const double chi2 = lstsq(B.data(), 3, n, v.data(), c);
          if (!(chi2 < best)) continue;
          best = chi2;
          // E was taken from x = lo: exp(-(x - lo)/tau) = exp(lo/tau) exp(-x/tau).
          const double g = t + 1 == taus.size() ? 1.0 : std::exp(sw.lo / taus[t]);
          out[0] = c[0];
          out[1] = std::hypot(c[1], c[2]) * g;
          out[2] = taus[t];
          out[3] = f;
          out[4] = std::atan2(-c[2], c[1]);
        }
      }
    }
  }
};

bool finite_params(const std::vector<double>& p) {
  return std::all_of(p.begin(), p.end(), [](double v) { return std::isfinite(v); });
}

}  // namespace

std::vector<double> spectrum_start(const ModelSpec& spec, std::span<const float> x,
                                   std::span<const float> y, const FitOptions& fit,
                                   std::span<const double> fixed_values) {
  const int P = spec.n_params(), n = int(x.size());
  if (y.size() != x.size()) throw std::invalid_argument("spectrum_start: x and y differ in length");
  if (n < P) throw std::invalid_argument("spectrum_start: fewer sweep points than parameters");
  if (!fixed_values.empty() && int(fixed_values.size()) != P)
    throw std::invalid_argument("spectrum_start: fixed_values must be empty or one per parameter");
  if (!all_finite(x.data(), n) || !all_finite(y.data(), n))
    throw std::invalid_argument("spectrum_start: non-finite sweep or spectrum");
  if (std::string msg = fit.validate(spec, n); !msg.empty()) throw std::invalid_argument(msg);
  const Sweep sw = make_sweep(x);
  const auto v = gather(sw, y.data());
  // Heuristic estimates: for the peak models one per direction, the one the
  // data suggest first; the refined fit with the lowest chi-square wins.
  std::vector<std::vector<double>> tries;
  switch (spec.kind) {
    case ModelKind::stretched_exp: stretched_quick(sw, v, 1.0, tries.emplace_back(P).data()); break;
    case ModelKind::damped_cosine: CosineSearch(sw).run(v, tries.emplace_back(P).data()); break;
    default: {
      tries.push_back(peaks_scratch(spec, sw, v, 0));
      const double other = tries[0][first_peak(spec) + 2] < 0 ? 1.0 : -1.0;
      tries.push_back(peaks_scratch(spec, sw, v, other));
    }
  }
  FitOptions o = fit;
  o.threads = 1;
  o.estimator = Estimator::lse;
  o.progress = nullptr;
  std::vector<double> best;
  double best_chi2 = std::numeric_limits<double>::infinity();
  for (auto& p : tries) {
    if (!finite_params(p)) p = default_start(spec, sw);
    normalise(spec, p.data());
    constrain(fit, fixed_values, p.data(), P);
    std::vector<float> start(p.begin(), p.end());
    const FitBatch b{x, y.data(), nullptr, nullptr, start.data(), 1};
    const FitResults r = fit_batch(spec, b, o);
    std::vector<double> q(r.params.begin(), r.params.end());
    if (r.state[0] > int(FitState::iteration_limit) || !finite_params(q) || !(r.chi2[0] < best_chi2))
      continue;
    best_chi2 = r.chi2[0];
    normalise(spec, q.data());
    constrain(fit, fixed_values, q.data(), P);
    best = std::move(q);
  }
  return best.empty() ? tries[0] : best;
}

void cube_starts(const ModelSpec& spec, std::span<const float> x, const float* y, int ny, int nx,
                 std::span<const double> global, const FitOptions& options, float* start) {
  const int P = spec.n_params(), n = int(x.size());
  if (ny < 0 || nx < 0) throw std::invalid_argument("cube_starts: negative image size");
  const std::int64_t n_pix = std::int64_t(ny) * nx;
  if (n_pix == 0) return;
  if (!y || !start) throw std::invalid_argument("cube_starts: needs spectra and a start buffer");
  if (!global.empty() && int(global.size()) != P)
    throw std::invalid_argument("cube_starts: global must be empty or one value per parameter");
  if (std::string msg = options.validate(spec, n); !msg.empty()) throw std::invalid_argument(msg);
  if (!all_finite(x.data(), n)) throw std::invalid_argument("cube_starts: non-finite sweep");
  const Sweep sw = make_sweep(x);

  std::vector<double> g(global.begin(), global.end());
  if (g.empty()) {
    std::vector<double> sum(size_t(ny) * n);
    std::vector<std::int64_t> count(ny);
    spectrum_row_sums(y, ny, nx, n, sum.data(), count.data());
    const auto mean = mean_from_row_sums(sum, count, n);
    g = all_finite(mean.data(), n) ? spectrum_start(spec, x, mean, options) : default_start(spec, sw);
  }
  if (!finite_params(g)) throw std::invalid_argument("cube_starts: the global start is not finite");
  normalise(spec, g.data());
  constrain(options, g, g.data(), P);

  std::optional<PeakSearch> peaks;
  std::optional<CosineSearch> cosine;
  if (spec.is_peak_model()) peaks.emplace(spec, sw, g);
  if (spec.kind == ModelKind::damped_cosine) cosine.emplace(sw);
  const double beta = spec.kind == ModelKind::stretched_exp ? std::clamp(g[3], 0.3, 3.0) : 1.0;

  parallel_pixels(n_pix, options.threads, [&](std::int64_t pix) {
    const float* yp = y + pix * n;
    std::vector<double> p = g;
    if (all_finite(yp, n)) {
      const auto v = gather(sw, yp);
      if (peaks) peaks->run(v, p.data());
      else if (cosine) cosine->run(v, p.data());
      else stretched_quick(sw, v, beta, p.data());
      normalise(spec, p.data());
      constrain(options, g, p.data(), P);
      if (!finite_params(p)) p = g;
    }
    for (int j = 0; j < P; ++j) start[pix * P + j] = float(p[j]);
  });
}

void spectrum_row_sums(const float* y, int rows, int nx, int n_points, double* sum,
                       std::int64_t* count) {
  for (int r = 0; r < rows; ++r) {
    double* s = sum + size_t(r) * n_points;
    std::fill_n(s, n_points, 0.0);
    count[r] = 0;
    for (int c = 0; c < nx; ++c) {
      const float* v = y + (std::int64_t(r) * nx + c) * n_points;
      if (!all_finite(v, n_points)) continue;
      for (int i = 0; i < n_points; ++i) s[i] += v[i];
      ++count[r];
    }
  }
}

std::vector<float> mean_from_row_sums(std::span<const double> sum,
                                      std::span<const std::int64_t> count, int n_points) {
  if (sum.size() != count.size() * size_t(n_points))
    throw std::invalid_argument("mean_from_row_sums: sum must hold n_points values per row");
  std::vector<double> acc(n_points, 0.0);
  std::int64_t total = 0;
  for (size_t r = 0; r < count.size(); ++r) {
    for (int i = 0; i < n_points; ++i) acc[i] += sum[r * n_points + i];
    total += count[r];
  }
  std::vector<float> mean(n_points, std::numeric_limits<float>::quiet_NaN());
  if (total > 0)
    for (int i = 0; i < n_points; ++i) mean[i] = float(acc[i] / double(total));
  return mean;
}

}  // namespace tessera::fit

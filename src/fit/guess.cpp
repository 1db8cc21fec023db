#include "guess.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <stdexcept>

#include "cell_starts.hpp"
#include "guess_peaks.hpp"
#include "user_model.hpp"
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
      pk[k] = {p[f + per_peak * k], std::abs(p[f + per_peak * k + 1]), p[f + per_peak * k + 2]};
    std::stable_sort(pk.begin(), pk.end(),
                     [](const auto& a, const auto& b) { return a[0] < b[0]; });
    for (int k = 0; k < spec.n_peaks; ++k)
      for (int j = 0; j < per_peak; ++j) p[f + per_peak * k + j] = pk[k][j];
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
    case ModelKind::expression: return spec.user->start();
    case ModelKind::stretched_exp: return {0, 1, sw.span / 3, 1};
    case ModelKind::damped_cosine: return {0, 1, sw.span, 2 / sw.span, 0};
    default: break;
  }
  std::vector<double> p(spec.n_params(), 0.0);
  p[0] = 1;
  for (int k = 0; k < spec.n_peaks; ++k) {
    const int b = first_peak(spec) + per_peak * k;
    p[b] = sw.lo + sw.span * (k + 1) / (spec.n_peaks + 1);
    p[b + 1] = sw.span / (4 * spec.n_peaks);
    p[b + 2] = -0.01;
  }
  return p;
}

// ---- stretched exponential ---------------------------------------------------------
// Offset from the tail, amplitude from the first points, T1 where the smoothed
// decay crosses 1/e of its amplitude; then T1 from 1/8 to 8 times that on a log
// grid shared by all pixels (24 steps per factor 8), with offset and amplitude
// by linear least squares at the given beta, refined by a parabola.
struct StretchedSearch {
  static constexpr double ratio = 1.0905077326652577;  // 8^(1/24)
  const Sweep& sw;
  double beta, t_min = 1, top = 1;
  std::vector<std::vector<double>> E;  // exp(-(x / t_k)^beta), t_k = t_min ratio^k
  std::vector<double> SE, SEE;

  StretchedSearch(const Sweep& s, double b) : sw(s), beta(b) {
    top = std::max(s.hi, s.span);
    t_min = std::max(s.dx / 4, 1e-6 * top) / std::pow(ratio, 25);
    for (double t = t_min; t <= 10 * top * std::pow(ratio, 25); t *= ratio) {
      std::vector<double> e(s.n);
      for (int i = 0; i < s.n; ++i) e[i] = basis(s.x[i], t);
      SE.push_back(std::accumulate(e.begin(), e.end(), 0.0));
      SEE.push_back(std::inner_product(e.begin(), e.end(), e.begin(), 0.0));
      E.push_back(std::move(e));
    }
  }
  double basis(double x, double t) const { return x > 0 ? std::exp(-std::pow(x / t, beta)) : 1.0; }

  // Least squares of v (centred: mean vm) on [1, e]: chi-square, offset, amp.
  static double fit2(int n, double Se, double See, double Sv, double Svv, double Sev, double vm,
                     double& off, double& amp) {
    const double det = n * See - Se * Se;
    if (!(det > 1e-12 * n * See)) return std::numeric_limits<double>::infinity();
    amp = (n * Sev - Se * Sv) / det;
    off = (Sv - amp * Se) / n;
    const double chi2 = Svv - off * Sv - amp * Sev;
    off += vm;
    return chi2;
  }

  void run(const std::vector<double>& v, double* out) const {
    const int n = sw.n;
    const int nt = std::max(3, n / 10), nf = std::max(1, std::min(3, n / 20));
    double off = 0, amp = 0;
    for (int i = n - nt; i < n; ++i) off += v[i] / nt;
    for (int i = 0; i < nf; ++i) amp += v[i] / nf;
    amp -= off;
    double t1 = 2 * top;
    const auto sm = smooth5(v);
    if (amp != 0) {
      double q_prev = 1;
      const double inv_e = 1 / std::exp(1.0);
      for (int i = 0; i < n; ++i) {
        const double q = (sm[i] - off) / amp;
        if (q <= inv_e) {
          t1 = i == 0 ? sw.x[0]
                      : sw.x[i - 1] + (q_prev - inv_e) / (q_prev - q) * (sw.x[i] - sw.x[i - 1]);
          break;
        }
        q_prev = q;
      }
    }
    t1 = std::clamp(t1, std::max(sw.dx / 4, 1e-6 * top), 10 * top);
    const double vm = std::accumulate(v.begin(), v.end(), 0.0) / n;
    double Sv = 0, Svv = 0;
    for (double vi : v) {
      Sv += vi - vm;
      Svv += (vi - vm) * (vi - vm);
    }
    const int K = int(E.size());
    const int k0 = std::clamp(int(std::lround(std::log(t1 / t_min) / std::log(ratio))), 0, K - 1);
    const int ka = std::max(0, k0 - 24), kz = std::min(K - 1, k0 + 24);
    std::vector<double> chi(kz - ka + 1);
    int kb = 0;
    for (int k = ka; k <= kz; ++k) {
      double Sev = 0;
      for (int i = 0; i < n; ++i) Sev += E[k][i] * (v[i] - vm);
      double o, a;
      chi[k - ka] = fit2(n, SE[k], SEE[k], Sv, Svv, Sev, vm, o, a);
      if (chi[k - ka] < chi[kb]) kb = k - ka;
    }
    double kr = kb;
    if (kb > 0 && kb < kz - ka && std::isfinite(chi[kb - 1]) && std::isfinite(chi[kb + 1])) {
      const double den = chi[kb - 1] - 2 * chi[kb] + chi[kb + 1];
      if (den > 0) kr += std::clamp(0.5 * (chi[kb - 1] - chi[kb + 1]) / den, -0.5, 0.5);
    }
    t1 = t_min * std::pow(ratio, ka + kr);
    double Se = 0, See = 0, Sev = 0;
    for (int i = 0; i < n; ++i) {
      const double e = basis(sw.x[i], t1);
      Se += e;
      See += e * e;
      Sev += e * (v[i] - vm);
    }
    double o = off, a = amp;
    if (std::isfinite(fit2(n, Se, See, Sv, Svv, Sev, vm, o, a))) {
      off = o;
      amp = a;
    }
    out[0] = off;
    out[1] = amp;
    out[2] = t1;
    out[3] = beta;
  }
};

// ---- damped cosine -----------------------------------------------------------------
// Frequency from the strongest peaks of a DFT over the (possibly non-uniform)
// sweep, four times oversampled, from half a cycle per span to the Nyquist
// frequency of the median spacing, refined by a parabola; then, at each of the
// three strongest, offset + exp(-x/tau) (a cos + b sin) by linear least squares
// on a tau grid (factors of 2 from span/16 to 16 span, and no decay): the best
// gives tau, amp = |(a, b)| and phase = atan2(-b, a).
struct CosineSearch {
  const Sweep& sw;
  double df;
  int j0, j1;
  std::vector<float> C, S;             // DFT table [n][j1 - j0 + 1], when small enough
  std::vector<double> taus;            // the grid; the last entry means no decay
  std::vector<std::vector<double>> E;  // exp(-(x - lo) / tau) per grid entry

  explicit CosineSearch(const Sweep& s) : sw(s), df(1 / (4 * s.span)), j0(2) {
    j1 = std::max(j0, int(std::floor(0.5 / s.dx / df)));
    const size_t rows = size_t(j1 - j0 + 1);
    if (rows * s.n <= (size_t(1) << 20)) {
      C.resize(rows * s.n);
      S.resize(rows * s.n);
      for (int i = 0; i < s.n; ++i)
        for (size_t j = 0; j < rows; ++j) {
          const double ph = 2 * pi * (j0 + double(j)) * df * s.x[i];
          C[i * rows + j] = float(std::cos(ph));
          S[i * rows + j] = float(std::sin(ph));
        }
    }
    for (int k = -4; k <= 4; ++k) taus.push_back(s.span * std::pow(2.0, k));
    taus.push_back(100 * s.span);
    for (size_t t = 0; t < taus.size(); ++t) {
      std::vector<double> e(s.n, 1.0);
      if (t + 1 < taus.size())
        for (int i = 0; i < s.n; ++i) e[i] = std::exp(-(s.x[i] - s.lo) / taus[t]);
      E.push_back(std::move(e));
    }
  }

  // |DFT|^2 of r at frequencies j0..j1 (times df): point by point over the
  // table, so that the frequencies' sums vectorise.
  void power(const std::vector<double>& r, std::vector<double>& pw) const {
    const int rows = j1 - j0 + 1;
    if (!C.empty()) {
      std::vector<float> re(rows, 0.0f), im(rows, 0.0f);
      for (int i = 0; i < sw.n; ++i) {
        const float ri = float(r[i]);
        const float* c = C.data() + size_t(i) * rows;
        const float* s = S.data() + size_t(i) * rows;
        for (int j = 0; j < rows; ++j) {
          re[j] += ri * c[j];
          im[j] += ri * s[j];
        }
      }
      for (int j = 0; j < rows; ++j) pw[j] = double(re[j]) * re[j] + double(im[j]) * im[j];
      return;
    }
    for (int j = 0; j < rows; ++j) {
      double re = 0, im = 0;
      for (int i = 0; i < sw.n; ++i) {
        const double ph = 2 * pi * (j0 + j) * df * sw.x[i];
        re += r[i] * std::cos(ph);
        im += r[i] * std::sin(ph);
      }
      pw[j] = re * re + im * im;
    }
  }

  // cos and sin of 2 pi f x at every point: by rotation on a uniform sweep.
  void trig(double f, std::vector<double>& cs, std::vector<double>& sn) const {
    if (!sw.uniform) {
      for (int i = 0; i < sw.n; ++i) {
        cs[i] = std::cos(2 * pi * f * sw.x[i]);
        sn[i] = std::sin(2 * pi * f * sw.x[i]);
      }
      return;
    }
    const double step = sw.span / (sw.n - 1);
    const double wc = std::cos(2 * pi * f * step), ws = std::sin(2 * pi * f * step);
    for (int i = 0; i < sw.n; ++i) {
      if (i % 32 == 0) {  // re-anchored now and then against drift
        cs[i] = std::cos(2 * pi * f * sw.x[i]);
        sn[i] = std::sin(2 * pi * f * sw.x[i]);
      } else {
        cs[i] = cs[i - 1] * wc - sn[i - 1] * ws;
        sn[i] = sn[i - 1] * wc + cs[i - 1] * ws;
      }
    }
  }

  void run(const std::vector<double>& v, double* out) const {
    const int n = sw.n;
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
    std::vector<double> r(n), pw(j1 - j0 + 1);
    double Srr = 0;
    for (int i = 0; i < n; ++i) {
      r[i] = v[i] - mean;
      Srr += r[i] * r[i];
    }
    power(r, pw);
    std::vector<int> peaks;
    for (int j = 0; j <= j1 - j0; ++j)
      if ((j == 0 || pw[j] >= pw[j - 1]) && (j == j1 - j0 || pw[j] >= pw[j + 1]))
        peaks.push_back(j);
    std::stable_sort(peaks.begin(), peaks.end(), [&](int a, int b) { return pw[a] > pw[b]; });
    if (peaks.size() > 3) peaks.resize(3);
    out[0] = mean;
    out[1] = std::sqrt(2 * Srr / n);
    out[2] = sw.span;
    out[3] = (j0 + (peaks.empty() ? 0 : peaks[0])) * df;
    out[4] = 0;
    double best = std::numeric_limits<double>::infinity();
    std::vector<double> cs(n), sn(n);
    for (int j : peaks) {
      double f = (j0 + j) * df;
      if (j > 0 && j < j1 - j0) {
        const double den = pw[j - 1] - 2 * pw[j] + pw[j + 1];
        if (den < 0) f += df * std::clamp(0.5 * (pw[j - 1] - pw[j + 1]) / den, -0.5, 0.5);
      }
      trig(f, cs, sn);
      for (size_t t = 0; t < taus.size(); ++t) {
        // r ~ a E cos + b E sin + constant: centred 2 x 2 normal equations.
        const double* e = E[t].data();
        double Sc = 0, Ss = 0, Scc = 0, Scs = 0, Sss = 0, Src = 0, Srs = 0;
        for (int i = 0; i < n; ++i) {
          const double c = e[i] * cs[i], s = e[i] * sn[i];
          Sc += c;
          Ss += s;
          Scc += c * c;
          Scs += c * s;
          Sss += s * s;
          Src += r[i] * c;
          Srs += r[i] * s;
        }
        const double C11 = Scc - Sc * Sc / n, C12 = Scs - Sc * Ss / n, C22 = Sss - Ss * Ss / n;
        const double det = C11 * C22 - C12 * C12;
        if (!(det > 1e-12 * C11 * C22)) continue;
        const double a = (C22 * Src - C12 * Srs) / det, b = (C11 * Srs - C12 * Src) / det;
        const double chi2 = Srr - a * Src - b * Srs;
        if (!(chi2 < best)) continue;
        best = chi2;
        // E was taken from x = lo: exp(-(x - lo)/tau) = exp(lo/tau) exp(-x/tau).
        const double g = t + 1 == taus.size() ? 1.0 : std::exp(sw.lo / taus[t]);
        out[0] = mean - (a * Sc + b * Ss) / n;
        out[1] = std::hypot(a, b) * g;
        out[2] = taus[t];
        out[3] = f;
        out[4] = std::atan2(-b, a);
      }
    }
  }
};

bool finite_params(const std::vector<double>& p) {
  return std::all_of(p.begin(), p.end(), [](double v) { return std::isfinite(v); });
}

}  // namespace

void normalise_start(const ModelSpec& spec, double* p) { normalise(spec, p); }

void constrain_start(const FitOptions& o, std::span<const double> fixed, double* p, int P) { constrain(o, fixed, p, P); }

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
    case ModelKind::stretched_exp:
      StretchedSearch(sw, 1.0).run(v, tries.emplace_back(P).data());
      break;
    case ModelKind::damped_cosine: CosineSearch(sw).run(v, tries.emplace_back(P).data()); break;
    case ModelKind::expression: tries.push_back(spec.user->start_for(y)); break;
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
    if (r.state[0] > int(FitState::iteration_limit) || !finite_params(q) ||
        !(r.chi2[0] < best_chi2))
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
    g = all_finite(mean.data(), n) ? spectrum_start(spec, x, mean, options)
                                   : default_start(spec, sw);
  }
  if (!finite_params(g)) throw std::invalid_argument("cube_starts: the global start is not finite");
  normalise(spec, g.data());
  constrain(options, g, g.data(), P);

  std::optional<PeakSearch> peaks;
  std::optional<CosineSearch> cosine;
  std::optional<StretchedSearch> stretched;
  if (spec.is_peak_model()) peaks.emplace(spec, sw, g);
  if (spec.kind == ModelKind::damped_cosine) cosine.emplace(sw);
  if (spec.kind == ModelKind::stretched_exp) stretched.emplace(sw, std::clamp(g[3], 0.3, 3.0));

  parallel_pixels(n_pix, options.threads, [&](std::int64_t pix) {
    const float* yp = y + pix * n;
    std::vector<double> p = g;
    // Models of the user's own have no search: every pixel takes the global start.
    if (all_finite(yp, n) && (peaks || cosine || stretched)) {
      const auto v = gather(sw, yp);
      if (peaks) peaks->run(v, p.data());
      else if (cosine) cosine->run(v, p.data());
      else stretched->run(v, p.data());
      normalise(spec, p.data());
      constrain(options, g, p.data(), P);
      if (!finite_params(p)) p = g;
    }
    for (int j = 0; j < P; ++j) start[pix * P + j] = float(p[j]);
  });
}

void spectrum_row_sums(const float* y, int rows, int nx, int n_points, double* sum,
                       std::int64_t* count) {
  band_sums(y, rows, single_cell(rows, nx), n_points, sum, count);  // one band: the whole row
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

// Internal to src/fit/guess*: starts for the peak models, from nothing (the
// mean spectrum) or per pixel near a global fit. Included only by guess.cpp.
#pragma once

#include <array>
#include <utility>

#include "guess_util.hpp"

namespace tessera::fit::guess_detail {

// ---- peaks: no prior ------------------------------------------------------------
// Baseline from a high (dips) or low (peaks) percentile, or a line through the
// baseline side for a linear background; then the N strongest features one at
// a time, each subtracted before the next is sought (so tails make no false
// features), with the width from the half-depth crossings. direction: -1 dips,
// +1 peaks, 0 decided from the data (the median nearer the maximum: dips).
inline std::vector<double> peaks_scratch(const ModelSpec& spec, const Sweep& sw,
                                         const std::vector<double>& v, double direction) {
  const int n = sw.n, N = spec.n_peaks, first = first_peak(spec);
  const bool gauss = spec.kind == ModelKind::gaussian;
  const auto sm = smooth5(v);
  const double med = percentile(sm, 0.5);
  const auto [mn_it, mx_it] = std::minmax_element(sm.begin(), sm.end());
  const double mn = *mn_it, mx = *mx_it;
  const double sgn = direction != 0 ? direction : (med - mn) >= (mx - med) ? -1.0 : 1.0;
  double a = percentile(sm, sgn < 0 ? 0.9 : 0.1), b = 0;
  if (spec.linear_background) {
    std::vector<char> keep(n, 1);
    std::vector<double> B(2 * n), w(n);
    for (int it = 0; it < 5; ++it) {
      int m = 0;
      for (int i = 0; i < n; ++i) {
        const double s = keep[i] ? 1.0 : 0.0;
        B[i] = s;
        B[n + i] = s * (sw.x[i] - spec.x_mid);
        w[i] = s * sm[i];
        m += keep[i];
      }
      double c[2];
      if (m < 3 || !std::isfinite(lstsq(B.data(), 2, n, w.data(), c))) break;
      a = c[0];
      b = c[1];
      for (int i = 0; i < n; ++i) keep[i] = sgn * (sm[i] - (a + b * (sw.x[i] - spec.x_mid))) <= 0;
    }
  }
  std::vector<double> r(n);
  for (int i = 0; i < n; ++i) r[i] = sgn * (sm[i] - (a + b * (sw.x[i] - spec.x_mid)));
  const double tiny = 1e-3 * std::max(mx - mn, 1e-9 * std::max(1.0, std::abs(a)));
  std::vector<double> p(spec.n_params());
  p[0] = a;
  if (spec.linear_background) p[1] = b;
  for (int k = 0; k < N; ++k) {
    const int i0 = int(std::max_element(r.begin(), r.end()) - r.begin());
    double d = r[i0], pos = sw.x[i0], fwhm = sw.span / (4 * N);
    if (d > tiny) {
      if (i0 > 0 && i0 < n - 1) {
        const double den = r[i0 - 1] - 2 * r[i0] + r[i0 + 1];
        if (den < 0) {
          const double t = std::clamp(0.5 * (r[i0 - 1] - r[i0 + 1]) / den, -0.5, 0.5);
          pos += t * (t < 0 ? sw.x[i0] - sw.x[i0 - 1] : sw.x[i0 + 1] - sw.x[i0]);
        }
      }
      const double half = 0.5 * d;
      double xl = NAN, xr = NAN;
      int j = i0;
      while (j > 0 && r[j] > half) --j;
      if (r[j] <= half) xl = sw.x[j] + (half - r[j]) / (r[j + 1] - r[j]) * (sw.x[j + 1] - sw.x[j]);
      j = i0;
      while (j < n - 1 && r[j] > half) ++j;
      if (r[j] <= half) xr = sw.x[j] - (half - r[j]) / (r[j - 1] - r[j]) * (sw.x[j] - sw.x[j - 1]);
      if (std::isfinite(xl) && std::isfinite(xr)) fwhm = xr - xl;
      else if (std::isfinite(xl)) fwhm = 2 * (pos - xl);
      else if (std::isfinite(xr)) fwhm = 2 * (xr - pos);
      fwhm = std::max(fwhm, sw.dx);
    } else {
      d = tiny;
    }
    for (int i = 0; i < n; ++i) r[i] -= d * line_shape(gauss, 2 * (sw.x[i] - pos) / fwhm);
    p[first + per_peak * k] = pos;
    p[first + per_peak * k + 1] = fwhm;
    p[first + per_peak * k + 2] = sgn * d;
  }
  return p;
}

// Robust noise level of a spectrum: the median absolute second difference,
// scaled to the standard deviation of white noise.
inline double noise_sigma(const std::vector<double>& v) {
  std::vector<double> d;
  for (size_t i = 1; i + 1 < v.size(); ++i) d.push_back(std::abs(v[i - 1] - 2 * v[i] + v[i + 1]));
  if (d.empty()) return 0;
  std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
  return d[d.size() / 2] / (0.6745 * std::sqrt(6.0));
}

// ---- peaks: per-pixel search near a global fit -------------------------------------
// 1. The pixel's background and contrast: v ~ a [+ b (x - x_mid)] + c * (global
//    peaks), by linear least squares.
// Then, for each width w of a ladder (ratio 2, from 0.2 times the
// narrowest global width, at least 1.5 sweep spacings, to the widest):
// 2. Candidate features, N + 2 of them, CLEAN-like: the position of the best
//    matched-filter score (chi-square reduction of a line of width w plus a
//    local offset over the points within 1.25 w, in units of the pixel's noise
//    variance) on the background-subtracted spectrum; its line is subtracted
//    before the next is sought, so one feature's side lobes do not pose as
//    others. One width per pass: a wide line that merges two close features
//    loses to two narrow ones in step 4, not in the score.
// 3. Assignment: global peak k takes at most one candidate within 2.5 global
//    widths of its global position, candidates in the same order as the peaks
//    (so neighbours cannot swap and two peaks never share a feature), maximising
//    the total score minus (shift / (0.35 global width))^2 (a prior: the mean
//    spectrum's width measures the spread of positions), by dynamic
//    programming. A peak without a candidate keeps its global line.
// 4. Background and amplitudes by linear least squares at those positions and
//    widths. The start with the lowest chi-square over the ladder and the scaled
//    global start of step 1 wins.
struct PeakSearch {
  const ModelSpec& spec;
  const Sweep& sw;
  std::vector<double> g;  // the global start
  bool gauss;
  int first, N;
  double sign_all = 0;             // common sign of the global amplitudes, or 0
  std::vector<double> xc, gshape;  // x - x_mid; the global peaks without offset
  std::vector<double> ladder;      // widths of the candidate search

  // What the score profile of one ladder width needs that does not depend on
  // the pixel (uniform sweeps only; see candidates): the line's values T[d]
  // at offsets d = -H..H, and per position t the window's sum of T over its
  // size m (St_m) and 1 / var(T) (inv_var, 0 where the window is unusable).
  struct WidthTable {
    int H = 0;
    std::vector<double> T, St_m, inv_var;
  };
  std::vector<WidthTable> tables;  // one per ladder width

  PeakSearch(const ModelSpec& s, const Sweep& w, std::vector<double> glob)
      : spec(s), sw(w), g(std::move(glob)), gauss(s.kind == ModelKind::gaussian),
        first(first_peak(s)), N(s.n_peaks), xc(w.n), gshape(w.n, 0.0) {
    double wmin = width(0), wmax = width(0);
    int pos_amps = 0;
    for (int k = 0; k < N; ++k) {
      wmin = std::min(wmin, width(k));
      wmax = std::max(wmax, width(k));
      pos_amps += amp(k) > 0;
    }
    sign_all = pos_amps == N ? 1.0 : pos_amps == 0 ? -1.0 : 0.0;
    for (int i = 0; i < sw.n; ++i) {
      xc[i] = sw.x[i] - spec.x_mid;
      for (int k = 0; k < N; ++k) gshape[i] += amp(k) * shape(i, pos(k), width(k));
    }
    const double lo = std::max(1.5 * sw.dx, 0.2 * wmin), hi = std::max(std::min(wmax, sw.span), lo);
    for (double w = lo; w < hi * 1.0001; w *= 2) ladder.push_back(w);
    if (ladder.back() < hi) ladder.push_back(hi);
    for (double w : ladder) tables.push_back(width_table(w));
  }

  WidthTable width_table(double w) const {
    WidthTable tb;
    if (!sw.uniform) return tb;
    const int n = sw.n;
    const double step = sw.span / (n - 1);
    const int H = int(std::floor(kWin * w / step + 1e-9));
    std::vector<double> T(2 * H + 1), PT(2 * H + 2, 0.0), PTT(2 * H + 2, 0.0);
    for (int d = -H; d <= H; ++d) {
      T[d + H] = line_shape(gauss, 2 * d * step / w);
      PT[d + H + 1] = PT[d + H] + T[d + H];
      PTT[d + H + 1] = PTT[d + H] + T[d + H] * T[d + H];
    }
    std::vector<double> St_m(n), inv_var(n);
    for (int t = 0; t < n; ++t) {
      const int d0 = std::max(-H, -t), d1 = std::min(H, n - 1 - t), m = d1 - d0 + 1;
      const double St = PT[d1 + H + 1] - PT[d0 + H], Stt = PTT[d1 + H + 1] - PTT[d0 + H];
      const double var = Stt - St * St / m;
      St_m[t] = St / m;
      inv_var[t] = m >= 4 && var > 1e-12 * Stt ? 1 / var : 0;
    }
    tb.H = H;
    tb.T = std::move(T);
    tb.St_m = std::move(St_m);
    tb.inv_var = std::move(inv_var);
    return tb;
  }
  double pos(int k) const { return g[first + per_peak * k]; }
  double width(int k) const { return g[first + per_peak * k + 1]; }
  double amp(int k) const { return g[first + per_peak * k + 2]; }
  double reach(int k) const { return std::max(2.5 * width(k), 5 * sw.dx); }
  double shape(int i, double p, double w) const { return line_shape(gauss, 2 * (sw.x[i] - p) / w); }

  // Chi-square reduction and amplitude of a line (p, w) plus a local offset
  // fitted to r over the points within kWin * w of p; score -1 when the window is
  // too small or the amplitude has the wrong sign (sign 0: either).
  std::pair<double, double> match(const std::vector<double>& r, double p, double w,
                                  double sign) const {
    const auto i0 = int(std::lower_bound(sw.x.begin(), sw.x.end(), p - kWin * w) - sw.x.begin());
    const auto i1 = int(std::upper_bound(sw.x.begin(), sw.x.end(), p + kWin * w) - sw.x.begin());
    const int m = i1 - i0;
    if (m < 4) return {-1, 0};
    double St = 0, Stt = 0, Sr = 0, Srt = 0;
    for (int i = i0; i < i1; ++i) {
      const double s = shape(i, p, w);
      St += s;
      Stt += s * s;
      Sr += r[i];
      Srt += r[i] * s;
    }
    const double var = Stt - St * St / m, cov = Srt - St * Sr / m;
    if (!(var > 1e-12 * Stt)) return {-1, 0};
    const double e = cov / var;
    if (sign != 0 && !(e * sign > 0)) return {-1, 0};
    return {cov * cov / var, e};
  }

  struct Cand {
    double p, w, e, score;
  };

  // Step 2: the strongest feature of the score profile of width w (at the
  // sweep points, its position refined by a parabola) is taken, its line
  // subtracted from r (within kSub w), the profile updated where that changed it,
  // and so on, N + 2 times; returned in order of position.
  std::vector<Cand> candidates(const std::vector<double>& r0, std::size_t width_index) const {
    const int n = sw.n;
    const double w = ladder[width_index];
    // The profile: at sweep point t, the score and amplitude of a line there.
    std::vector<double> score(n, -1.0), amp_at(n, 0.0);
    std::vector<Cand> out;
    // On a uniform sweep the line centred on point t has the same values T[d]
    // at points t + d for every t: the correlation of r with T is computed as
    // a convolution (vectorised over t, on r padded with zeros), the sums over
    // the truncated windows at the ends from prefix sums. Other sweeps: match().
    // What depends on the width only is in tables (width_table).
    const WidthTable& tb = tables[width_index];
    const int H = tb.H;
    const std::vector<double>& T = tb.T;
    const std::vector<double>& St_m = tb.St_m;
    const std::vector<double>& inv_var = tb.inv_var;
    std::vector<double> rp(n + 2 * H, 0.0), PR(n + 2 * H + 1, 0.0), corr(n, 0.0);
    std::copy(r0.begin(), r0.end(), rp.begin() + H);
    std::vector<double> r(r0);  // the unpadded residual, for match()
    auto update = [&](int t0, int t1) {  // profile at points [t0, t1)
      if (!sw.uniform) {
        for (int t = t0; t < t1; ++t) {
          const auto [sc, e] = match(r, sw.x[t], w, sign_all);
          score[t] = sc;
          amp_at[t] = e;
        }
        return;
      }
      std::fill(corr.begin() + t0, corr.begin() + t1, 0.0);
      for (int d = 0; d <= 2 * H; ++d) {
        const double Td = T[d];
        const double* src = rp.data() + d;
        for (int t = t0; t < t1; ++t) corr[t] += Td * src[t];
      }
      // Branch-free, through restrict pointers, so that the loop is vectorised.
      const double* __restrict cr = corr.data();
      const double* __restrict sm = St_m.data();
      const double* __restrict iv = inv_var.data();
      const double* __restrict pr = PR.data();
      double* __restrict sc = score.data();
      double* __restrict am = amp_at.data();
      const double sign = sign_all;
      for (int t = t0; t < t1; ++t) {
        const double cov = cr[t] - sm[t] * (pr[t + 2 * H + 1] - pr[t]), e = cov * iv[t];
        const double gain = cov * e, signed_e = e * sign;
        const bool ok = (iv[t] > 0) & ((sign == 0) | (signed_e > 0));
        sc[t] = ok ? gain : -1.0;
        am[t] = ok ? e : 0.0;
      }
    };
    auto prefix = [&](int from) {
      for (int i = from; i < n + 2 * H; ++i) PR[i + 1] = PR[i] + rp[i];
    };
    auto index = [&](double xv) {
      return int(std::lower_bound(sw.x.begin(), sw.x.end(), xv) - sw.x.begin());
    };
    prefix(0);
    update(0, n);
    for (int it = 0; it < N + 2; ++it) {
      const int tb = first_max(score);
      if (!(score[tb] > 0)) break;
      Cand c{sw.x[tb], w, amp_at[tb], score[tb]};
      if (tb > 0 && tb < n - 1 && score[tb - 1] >= 0 && score[tb + 1] >= 0)
        c.p = vertex(sw.x[tb - 1], score[tb - 1], sw.x[tb], c.score, sw.x[tb + 1],
                     score[tb + 1]);
      out.push_back(c);
      const int i0 = index(c.p - kSub * w), i1 = index(c.p + kSub * w);
      for (int i = i0; i < i1; ++i) {
        r[i] -= c.e * shape(i, c.p, w);
        rp[i + H] = r[i];
      }
      prefix(i0 + H);
      update(std::max(0, sw.uniform ? i0 - H : index(sw.x[i0] - kWin * w) - 1),
             std::min(n, sw.uniform ? i1 + H : index(sw.x[std::max(i1 - 1, 0)] + kWin * w) + 1));
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const Cand& a, const Cand& b) { return a.p < b.p; });
    return out;
  }
  static constexpr double kWin = 1.25;  // the score's window: points within kWin * w
  static constexpr double kSub = 3.0;   // a taken line is subtracted within kSub * w

  // Index of the first largest of the scores, which are finite (-1 where
  // unusable). The maximum comes from four independent chains, then the first
  // index holding it: the same index as a scan for the first strict maximum,
  // without its chain of dependent compares and mispredicted branches.
  static int first_max(const std::vector<double>& scores) {
    const int n = int(scores.size());
    const double* v = scores.data();
    double m0 = v[0], m1 = m0, m2 = m0, m3 = m0;
    int t = 1;
    for (; t + 3 < n; t += 4) {
      m0 = v[t] > m0 ? v[t] : m0;
      m1 = v[t + 1] > m1 ? v[t + 1] : m1;
      m2 = v[t + 2] > m2 ? v[t + 2] : m2;
      m3 = v[t + 3] > m3 ? v[t + 3] : m3;
    }
    for (; t < n; ++t) m0 = v[t] > m0 ? v[t] : m0;
    const double m01 = m1 > m0 ? m1 : m0, m23 = m3 > m2 ? m3 : m2;
    const double m = m23 > m01 ? m23 : m01;
    int tb = 0;
    while (v[tb] != m) ++tb;
    return tb;
  }

  // Vertex of the parabola through three points, kept within [x0, x2].
  static double vertex(double x0, double y0, double x1, double y1, double x2, double y2) {
    const double a = (x1 - x0) * (y1 - y2), b = (x1 - x2) * (y1 - y0);
    const double den = a - b;
    if (!(std::abs(den) > 0)) return x1;
    return std::clamp(x1 - 0.5 * ((x1 - x0) * a - (x1 - x2) * b) / den, x0, x2);
  }

  // Step 3: for each peak, the index of its candidate or -1.
  std::vector<int> assign(const std::vector<Cand>& c, double inv_var) const {
    const int M = int(c.size());
    auto gain = [&](int k, int j) {
      const double d = c[j].p - pos(k);
      if (std::abs(d) > reach(k) || !(c[j].e * amp(k) > 0)) return -1.0;
      const double pw = 0.35 * width(k);
      return c[j].score * inv_var - (d / pw) * (d / pw);
    };
    // dp[k][j]: best total of peaks < k using candidates < j; how: 0 peak k-1
    // takes none, 1 candidate j-1 unused, 2 peak k-1 takes candidate j-1.
    std::vector<double> dp(size_t(N + 1) * (M + 1), 0.0);
    std::vector<char> how(dp.size(), 0);
    auto at = [&](int k, int j) { return size_t(k) * (M + 1) + j; };
    for (int k = 0; k < N; ++k) {
      dp[at(k + 1, 0)] = dp[at(k, 0)];
      for (int j = 1; j <= M; ++j) {
        double best = dp[at(k, j)];
        char h = 0;
        if (dp[at(k + 1, j - 1)] > best) {
          best = dp[at(k + 1, j - 1)];
          h = 1;
        }
        const double gj = gain(k, j - 1);
        if (gj > 0 && dp[at(k, j - 1)] + gj > best) {
          best = dp[at(k, j - 1)] + gj;
          h = 2;
        }
        dp[at(k + 1, j)] = best;
        how[at(k + 1, j)] = h;
      }
    }
    std::vector<int> out(N, -1);
    for (int k = N, j = M; k > 0;) {
      const char h = j > 0 ? how[at(k, j)] : 0;
      if (h == 1) {
        --j;
      } else {
        if (h == 2) out[k - 1] = --j;
        --k;
      }
    }
    return out;
  }

  void run(const std::vector<double>& v, double* out) const {
    const int n = sw.n, lb = spec.linear_background ? 1 : 0;
    // Step 1.
    std::vector<double> B(size_t(first + N) * n);
    for (int i = 0; i < n; ++i) {
      B[i] = 1;
      if (lb) B[n + i] = xc[i];
      B[size_t(first) * n + i] = gshape[i];
    }
    double c[12] = {};
    double a = 0, b = 0, scale = 1;
    double chi2_global = lstsq(B.data(), first + 1, n, v.data(), c);
    if (std::isfinite(chi2_global) && std::isfinite(c[first])) {
      a = c[0];
      b = lb ? c[1] : 0.0;
      scale = std::clamp(c[first], 0.2, 5.0);
    } else {
      a = std::accumulate(v.begin(), v.end(), 0.0) / n;
      chi2_global = std::numeric_limits<double>::infinity();
    }
    out[0] = a;
    if (lb) out[1] = b;
    for (int k = 0; k < N; ++k) {
      out[first + per_peak * k] = pos(k);
      out[first + per_peak * k + 1] = width(k);
      out[first + per_peak * k + 2] = scale * amp(k);
    }
    // Steps 2 to 4 for each width of the ladder.
    std::vector<double> r0(n), trial(spec.n_params());
    for (int i = 0; i < n; ++i) r0[i] = v[i] - a - b * xc[i];
    const double sigma = std::max(noise_sigma(v), 1e-6 * std::max(std::abs(a), 1e-30));
    double best = chi2_global;
    for (std::size_t wi = 0; wi < ladder.size(); ++wi) {
      const double chi2 = try_width(v, r0, scale, wi, 1 / (sigma * sigma), trial.data());
      if (chi2 < best) {
        best = chi2;
        std::copy(trial.begin(), trial.end(), out);
      }
    }
  }

  // Steps 2 to 4 with candidates of width ladder[width_index]; returns the
  // chi-square of the start written to out (NaN when the least squares fail).
  double try_width(const std::vector<double>& v, const std::vector<double>& r0, double scale,
                   std::size_t width_index, double inv_var, double* out) const {
    const int n = sw.n, lb = spec.linear_background ? 1 : 0;
    const auto cand = candidates(r0, width_index);
    const auto which = assign(cand, inv_var);
    std::vector<double> P(N), W(N), A(N), B(size_t(first + N) * n);
    for (int i = 0; i < n; ++i) {
      B[i] = 1;
      if (lb) B[n + i] = xc[i];
    }
    for (int k = 0; k < N; ++k) {
      const int j = which[k];
      P[k] = j >= 0 ? cand[j].p : pos(k);
      W[k] = j >= 0 ? cand[j].w : width(k);
      A[k] = j >= 0 ? cand[j].e : scale * amp(k);
      for (int i = 0; i < n; ++i) B[size_t(first + k) * n + i] = shape(i, P[k], W[k]);
    }
    double c[12];
    const double chi2 = lstsq(B.data(), first + N, n, v.data(), c);
    if (!std::isfinite(chi2)) return chi2;
    out[0] = c[0];
    if (lb) out[1] = c[1];
    for (int k = 0; k < N; ++k) {
      out[first + per_peak * k] = P[k];
      out[first + per_peak * k + 1] = W[k];
      out[first + per_peak * k + 2] = c[first + k] * amp(k) > 0 ? c[first + k] : A[k];
    }
    return chi2;
  }
};

}  // namespace tessera::fit::guess_detail

// The Levenberg-Marquardt engine, written once for every value type: double
// (tests, certified problems), float (one CUDA thread per fit) and SIMD packs
// (one CPU lane per fit). All control flow that depends on a fit's own numbers is
// lane-wise (masks and selects), so a fit's result never depends on its
// neighbours in a pack.
//
// Algorithm, per iteration, on chi2(p) = sum_i w_i (y_i - f(x_i; p))^2 (LSE) or
// the Poisson deviance 2 sum_i (f_i - y_i - y_i ln(f_i / y_i)) (MLE):
//  - H = J^T W J, g = J^T W r at the current p (W = weights; MLE: W = 1/f, which
//    makes H the Fisher information and g the score: Fisher scoring);
//  - Marquardt scaling: D = running maximum of diag(H) (More 1978), and the step
//    solves (H + lambda diag(D)) delta = g, in the equilibrated variables
//    z = sqrt(D) delta so that the float Cholesky sees a unit-diagonal matrix;
//  - the trial point is p + delta projected on the box bounds; fixed parameters
//    never move, nor do parameters on a bound that the gradient presses them
//    against (active set);
//  - a step is accepted when chi2 decreases; lambda follows Nielsen's rule
//    (accept: lambda *= max(1/3, 1 - (2 rho - 1)^3), nu = 2; reject:
//    lambda *= nu, nu *= 2), rho = actual / predicted reduction;
//  - convergence needs both |chi2 - chi2_trial| <= ftol * chi2 (plus the
//    rounding error of the two chi2 values, see lm_evaluate) and a small
//    step: ||sqrt(D) delta|| <= xtol (||sqrt(D) p|| + xtol), or, for an
//    undamped-enough step (lambda <= 1), delta^T H delta <= xtol * chi2 (the
//    step is a negligible fraction of the parameters' standard errors).
//    Relative tests only, never an absolute chi-square threshold, so
//    normalised spectra (chi2 << 1) are not stopped early.
// Every iteration evaluates the model and its Jacobian once at the trial point
// (the value and the derivatives in one pass over the data), so accepted steps
// need no second pass.
#pragma once

#include "fit_types.hpp"
#include "hd.hpp"
#include "linalg.hpp"
#include "model.hpp"
#include "scalar_math.hpp"

namespace tessera::core {

// What is shared by all fits of a batch.
template <class S, int P> struct LMConfig {
  bool free[P];   // false: the parameter keeps its start value
  S lo[P];        // box bounds; -inf / +inf (or huge values) when unbounded
  S hi[P];
  int max_iter = 100;
  S ftol = S(1e-6);    // relative chi-square change
  S xtol = S(1e-6);    // relative scaled step
  S lambda0 = S(0.1);  // Marquardt-scaled: the first step is cautious, then Nielsen's rule
  Estimator estimator = Estimator::lse;

  TESSERA_HD int n_free() const {
    int n = 0;
    for (int j = 0; j < P; ++j) n += free[j] ? 1 : 0;
    return n;
  }
};

// One spectrum (or a pack of spectra): y[i * stride], optional weights w.
template <class T> struct LMData {
  const ScalarOf<T>* x;
  const T* y;
  const T* w;  // nullptr: unit weights (LSE); ignored for MLE
  int n;
  long long stride = 1;  // 64-bit: n * stride may pass 2^31 on a large device batch
};

template <class T, int P> struct LMState {
  T p[P];
  T g[P];
  T D[P];
  T H[tri_size<P>];
  T chi2;
  T chi2_err;  // rounding error of chi2 (lm_evaluate)
  T lambda;
  T nu;
  T iter;
  T state;          // a FitState, meaningful once done
  MaskOf<T> fresh;  // not yet evaluated at its start point
  MaskOf<T> done;
};

// 2^-23 for float, 2^-52 for double (std::numeric_limits is not usable on a device).
template <class S> TESSERA_HD constexpr S machine_epsilon() {
  return sizeof(S) == 4 ? S(1.1920928955078125e-7) : S(2.220446049250313e-16);
}

// Adds sum_i A_a(i) A_b(i) over the m points of a tile to the packed lower
// triangle N (b <= a < Q), where A holds one row per unknown (rows up to QP,
// zero-padded). Blocks of R x C accumulators stay in registers while the points
// stream past, so each loaded value feeds several multiply-adds; this is the
// hot loop of every fit.
template <int Q, int QP, int Tile, int R, int C, class T>
TESSERA_HD void accumulate_normal(const T (*A)[Tile], int m, T* N) {
  for (int a0 = 0; a0 < Q; a0 += R) {
    for (int b0 = 0; b0 < a0 + R && b0 < Q; b0 += C) {
      T acc[R][C];
      for (int u = 0; u < R; ++u)
        for (int v = 0; v < C; ++v) acc[u][v] = T(0);
      for (int i = 0; i < m; ++i) {
        T ra[R];
        for (int u = 0; u < R; ++u) ra[u] = A[a0 + u][i];
        for (int v = 0; v < C; ++v) {
          const T cb = A[b0 + v][i];
          for (int u = 0; u < R; ++u) acc[u][v] = vfma(ra[u], cb, acc[u][v]);
        }
      }
      for (int u = 0; u < R; ++u)
        for (int v = 0; v < C; ++v) {
          const int a = a0 + u, b = b0 + v;
          if (a < Q && b <= a) N[tri(a, b)] += acc[u][v];
        }
    }
  }
}

// chi2, H = J^T W J (packed lower triangle) and g = J^T W r at p. A trial point
// where the MLE model is not positive gets chi2 = +inf (the step is rejected).
// Points are taken a tile at a time: the rows sqrt(w) J_a and sqrt(w) r of the
// tile are stored, and their products summed by accumulate_normal, which
// yields H, g (row P) and the least-squares chi2 (element P, P) in one pass.
//
// chi2_err estimates the rounding error of chi2 itself (a random walk of one
// unit roundoff of |y| + |f| per point): chi2 changes below it are noise, which
// matters in float, where a 1 % dip on an offset of 1 leaves chi2 only about
// six significant digits.
template <int P, class Model, class T>
TESSERA_HD void lm_evaluate(const Model& model, const LMData<T>& d, Estimator est, const T* p,
                            T& chi2, T& chi2_err, T* H, T* g) {
  using S = ScalarOf<T>;
  constexpr int Tile = Traits<T>::eval_tile;
  constexpr int R = Traits<T>::block_rows, C = Traits<T>::block_cols;
  constexpr int Q = P + 1;  // unknowns plus the residual row
  constexpr int QP = ((Q + R - 1) / R * R > (Q + C - 1) / C * C) ? (Q + R - 1) / R * R
                                                                   : (Q + C - 1) / C * C;
  T N[tri_size<Q>];
  for (int k = 0; k < tri_size<Q>; ++k) N[k] = T(0);
  T A[QP][Tile];
  for (int a = Q; a < QP; ++a)
    for (int i = 0; i < Tile; ++i) A[a][i] = T(0);
  T dev = T(0), err2 = T(0);
  MaskOf<T> bad = T(1) < T(0);
  const bool mle = est == Estimator::mle;
  // A private copy of p: the compiler then knows that no store in the loop
  // changes it, and hoists per-peak constants (1 / fwhm) out of the loop.
  T pl[P];
  for (int j = 0; j < P; ++j) pl[j] = p[j];
  const bool weighted = mle || d.w != nullptr;
  for (int i0 = 0; i0 < d.n; i0 += Tile) {
    const int m = d.n - i0 < Tile ? d.n - i0 : Tile;
    for (int t = 0; t < m; ++t) {
      const int i = i0 + t;
      T f, J[P];
      model.eval(d.x[i], pl, f, J);
      const T y = d.y[i * d.stride];
      T r, mag;
      if constexpr (has_additive_offset<Model>) {
        const T y0 = y - pl[0];  // exact when y and the offset are close
        r = y0 - f;
        mag = vabs(y0) + vabs(f);
        f = pl[0] + f;
      } else {
        r = y - f;
        mag = vabs(y) + vabs(f);
      }
      if (weighted) {
        T w;
        if (mle) {
          // Deviance term 2 (f - y - y ln(f / y)), with ln(f / y) as
          // log1p(-r / y) so that it keeps the precision of the residual.
          w = T(1) / f;
          const T ylog = select(y > T(0), y * vlog1p(-r / select(y > T(0), y, T(1))), T(0));
          dev += T(S(2)) * (-r - ylog);
          bad = bad | !(f > T(0));
          err2 += T(4) * r * r;
        } else {
          w = d.w[i * d.stride];
          err2 += w * w * r * r * mag * mag;
        }
        const T sw = vsqrt(w);
        for (int a = 0; a < P; ++a) J[a] *= sw;
        r *= sw;
      } else {
        err2 += r * r * mag * mag;
      }
      for (int a = 0; a < P; ++a) A[a][t] = J[a];
      A[P][t] = r;
    }
    accumulate_normal<Q, QP, Tile, R, C>(A, m, N);
  }
  for (int k = 0; k < tri_size<P>; ++k) H[k] = N[k];
  for (int a = 0; a < P; ++a) g[a] = N[tri(P, a)];
  chi2 = select(bad, T(S(1) / S(0)), mle ? dev : N[tri(P, P)]);
  chi2_err = T(machine_epsilon<S>()) * vsqrt(err2);  // two unit roundoffs
}

// Sets up a fresh fit at p0 (clamped to the bounds; fixed parameters as given).
template <int P, class T>
TESSERA_HD void lm_init(const LMConfig<ScalarOf<T>, P>& c, const T* p0, LMState<T, P>& s) {
  for (int j = 0; j < P; ++j) {
    // Clamped to the box; a NaN start stays NaN (and ends as bad_start).
    const T pj = p0[j];
    s.p[j] = c.free[j] ? select(pj < T(c.lo[j]), T(c.lo[j]), select(pj > T(c.hi[j]), T(c.hi[j]), pj))
                       : pj;
    s.D[j] = T(0);
  }
  s.chi2 = T(0);
  s.chi2_err = T(0);
  s.lambda = T(c.lambda0);
  s.nu = T(2);
  s.iter = T(0);
  s.state = T(0);
  s.fresh = !(T(1) < T(0));
  s.done = T(1) < T(0);
}

// One iteration for every lane that is not done.
template <int P, class Model, class T>
TESSERA_HD void lm_step(const Model& model, const LMData<T>& d, const LMConfig<ScalarOf<T>, P>& c,
                        LMState<T, P>& s) {
  using S = ScalarOf<T>;
  using M = MaskOf<T>;
  constexpr S eps = machine_epsilon<S>();
  const M active = !s.done;
  const M fresh = active & s.fresh;
  const M stepping = active & !s.fresh;

  T pt[P];
  for (int j = 0; j < P; ++j) pt[j] = s.p[j];
  M solved = T(1) < T(0);
  T pred = T(0), step2 = T(0), pnorm2 = T(0), quad = T(0);
  if (any(stepping)) {
    T sc[P], z[P], A[tri_size<P>];
    // A free parameter sitting on a bound that the gradient pushes it
    // against is held there for this step (the active set): solving for it and
    // then clipping would leave the other parameters a step computed for a move
    // that never happens, and the fit would creep instead of converging.
    M held[P];
    for (int j = 0; j < P; ++j) {
      held[j] = T(1) < T(0);
      if (c.free[j])
        held[j] = ((s.p[j] <= T(c.lo[j])) & (s.g[j] < T(0))) |
                  ((s.p[j] >= T(c.hi[j])) & (s.g[j] > T(0)));
      sc[j] = c.free[j] ? T(1) / vsqrt(s.D[j]) : T(0);
      z[j] = select(held[j], T(0), s.g[j] * sc[j]);
    }
    for (int i = 0; i < P; ++i)
      for (int j = 0; j <= i; ++j) {
        const T unit = T(i == j ? S(1) : S(0));
        if (c.free[i] && c.free[j])
          A[tri(i, j)] = select(held[i] | held[j], unit,
                                s.H[tri(i, j)] * sc[i] * sc[j] + (i == j ? s.lambda : T(0)));
        else
          A[tri(i, j)] = unit;
      }
    solved = cholesky<P>(A, S(16) * eps);
    cholesky_solve<P>(A, z);
    T delta[P];
    for (int j = 0; j < P; ++j) {
      if (c.free[j]) {
        const T t = vmin(vmax(s.p[j] + z[j] * sc[j], T(c.lo[j])), T(c.hi[j]));
        pt[j] = select(stepping, t, s.p[j]);
      }
      delta[j] = pt[j] - s.p[j];
      if (c.free[j]) {
        step2 += s.D[j] * delta[j] * delta[j];
        pnorm2 += s.D[j] * s.p[j] * s.p[j];
      }
    }
    // Predicted reduction of the (projected) step: 2 delta^T g - delta^T H delta.
    for (int i = 0; i < P; ++i) {
      T hd = T(0);
      for (int j = 0; j < P; ++j) hd += s.H[i >= j ? tri(i, j) : tri(j, i)] * delta[j];
      pred += delta[i] * (T(2) * s.g[i] - hd);
      quad += delta[i] * hd;
    }
  }

  T chi2t, errt, Ht[tri_size<P>], gt[P];
  lm_evaluate<P>(model, d, c.estimator, pt, chi2t, errt, Ht, gt);
  const M ok = finite(chi2t);
  const T dchi = s.chi2 - chi2t;
  const M step_ok = stepping & solved & ok;
  const M accept = fresh | (step_ok & (dchi > T(0)));
  // The step is small relative to the parameters, or (for a step that is not
  // held back by damping) relative to their statistical uncertainty:
  // delta^T H delta <= xtol * chi2 moves them by at most sqrt(xtol * dof)
  // standard errors. The second form ends float fits at their rounding floor,
  // where steps are noise far below the errors but not below 1e-6 of p.
  const T thr = T(c.xtol) * (vsqrt(pnorm2) + T(c.xtol));
  const M small_step = (step2 <= thr * thr) | ((quad <= T(c.xtol) * s.chi2) & (s.lambda <= T(1)));
  const T change_tol = T(c.ftol) * s.chi2 + T(2) * (s.chi2_err + errt);
  const M converged = step_ok & (vabs(dchi) <= change_tol) & small_step;

  for (int j = 0; j < P; ++j) {
    s.p[j] = select(accept, pt[j], s.p[j]);
    s.g[j] = select(accept, gt[j], s.g[j]);
    s.D[j] = select(accept, vmax(s.D[j], Ht[tri(j, j)]), s.D[j]);
  }
  for (int k = 0; k < tri_size<P>; ++k) s.H[k] = select(accept, Ht[k], s.H[k]);
  s.chi2 = select(accept, chi2t, s.chi2);
  s.chi2_err = select(accept, errt, s.chi2_err);

  // Nielsen's damping update.
  const T rho = select(pred > T(0), dchi / pred, T(0));
  const T t = T(2) * vmin(vmax(rho, T(0)), T(1)) - T(1);
  const T shrink = vmax(T(S(1) / S(3)), T(1) - t * t * t);
  const T lam_acc = vmax(s.lambda * shrink, T(S(1e-12)));
  s.lambda = select(stepping, select(accept, lam_acc, s.lambda * s.nu), s.lambda);
  s.nu = select(stepping, select(accept, T(2), s.nu * T(2)), s.nu);
  s.iter = s.iter + select(stepping, T(1), T(0));

  // Fresh lanes: a start where the model is not finite, or where a free
  // parameter has no effect at all, ends here.
  M no_effect = T(1) < T(0);
  for (int j = 0; j < P; ++j)
    if (c.free[j]) no_effect = no_effect | !(Ht[tri(j, j)] > T(0));
  const M bad_start = fresh & !ok;
  const M singular = fresh & ok & no_effect;
  const M limit = stepping & !converged & (s.iter >= T(S(c.max_iter)));

  T state = s.state;
  state = select(converged, T(state_value(FitState::converged)), state);
  state = select(limit, T(state_value(FitState::iteration_limit)), state);
  state = select(singular, T(state_value(FitState::singular)), state);
  state = select(bad_start, T(state_value(FitState::bad_start)), state);
  s.state = state;
  s.done = s.done | converged | limit | singular | bad_start;
  s.fresh = s.fresh & !fresh;
}

// Parameters and one-sigma errors of a finished fit. Converged and
// iteration-limit fits get the covariance (H^-1, scaled by chi2 / (n - n_free)
// for least squares; the inverse Fisher information for MLE); a fit whose final
// H is singular becomes FitState::singular (returned in `state`). Fits in any
// other state get NaN.
// Fixed parameters have sigma 0.
template <int P, class T>
TESSERA_HD void lm_finalize(const LMConfig<ScalarOf<T>, P>& c, int n_points,
                            const LMState<T, P>& s, T* params, T* sigma, T& state) {
  using S = ScalarOf<T>;
  using M = MaskOf<T>;
  constexpr S eps = machine_epsilon<S>();
  const S nan = S(0) / S(0);
  T sc[P], A[tri_size<P>], inv[P];
  for (int j = 0; j < P; ++j) sc[j] = c.free[j] ? T(1) / vsqrt(s.D[j]) : T(0);
  for (int i = 0; i < P; ++i)
    for (int j = 0; j <= i; ++j)
      A[tri(i, j)] = (c.free[i] && c.free[j]) ? s.H[tri(i, j)] * sc[i] * sc[j]
                                              : T(i == j ? S(1) : S(0));
  // The scaled diagonal is H_jj / max over the fit of H_jj: a parameter whose
  // effect has fallen below 16 eps of its largest effect during the fit (an
  // amplitude that collapsed to zero takes its position and width with it) is
  // no longer determined, and the fit is singular.
  const M ok = cholesky<P>(A, S(16) * eps, S(16) * eps);
  cholesky_inverse_diagonal<P>(A, inv);
  const int dof = n_points - c.n_free();
  T scale = T(1);
  if (c.estimator == Estimator::lse) scale = dof > 0 ? s.chi2 / T(S(dof)) : T(nan);

  const M fitted = (s.state == T(state_value(FitState::converged))) |
                   (s.state == T(state_value(FitState::iteration_limit)));
  state = select(fitted & !ok, T(state_value(FitState::singular)), s.state);
  const M good = fitted & ok;
  for (int j = 0; j < P; ++j) {
    const T sg = c.free[j] ? vsqrt(inv[j] * scale) * sc[j] : T(0);
    params[j] = select(good, s.p[j], T(nan));
    sigma[j] = select(good, sg, T(nan));
  }
}

template <class T, int P> struct LMResult {
  T params[P];
  T sigma[P];
  T chi2;
  int iterations;
  FitState state;
};

// A whole fit of one spectrum: the scalar path (tests, one CUDA thread per fit).
template <int P, class Model, class T>
TESSERA_HD LMResult<T, P> lm_fit(const Model& model, const LMData<T>& d,
                                 const LMConfig<ScalarOf<T>, P>& c, const T* p0) {
  LMState<T, P> s;
  lm_init<P>(c, p0, s);
  while (!s.done) lm_step<P>(model, d, c, s);
  LMResult<T, P> r;
  T state;
  lm_finalize<P>(c, d.n, s, r.params, r.sigma, state);
  r.chi2 = s.chi2;
  r.iterations = int(s.iter);
  r.state = FitState(int(state));
  return r;
}

}  // namespace tessera::core

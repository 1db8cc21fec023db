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
          T cb = A[b0 + v][i];
          in_register(cb);
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

// The residual of a point is known to about one unit roundoff u of |y| + |f|
// at best, so chi2 is not known below about u^2 (|y| + |f|)^2 per point even
// when the residuals vanish (a perfect fit, y = 0 at some point): the error
// terms carry that floor, (r^2 + u^2 mag^2) mag^2, and the fit stops there
// instead of chasing a chi-square that shrinks towards denormals (Gpufit's
// 2-point line). Far below any noise, it changes nothing else.
template <class S>
TESSERA_HD constexpr S rounding_floor() {
  return S(0.25) * machine_epsilon<S>() * machine_epsilon<S>();
}

// One point's contribution: the row sqrt(w_i) J(x_i) (into J), the weighted
// residual sqrt(w_i) r_i, the point's term of the MLE deviance (0 for least
// squares), its term of chi2_err^2 (see lm_evaluate) and whether the MLE model
// is not positive there. pl is the parameter vector (a private copy, so that
// the compiler hoists per-peak constants out of the loop over points). Shared
// by lm_evaluate and the CUDA warp-per-fit kernel (cuda/fit_warp.hpp), whose
// lanes take one point each.
template <int P, class Model, class T>
TESSERA_HD void lm_point(const Model& model, const LMData<T>& d, bool mle, const T* pl, int i,
                         T* J, T& r, T& dev_term, T& err_term, MaskOf<T>& bad) {
  using S = ScalarOf<T>;
  T f;
  model.eval(d.x[i], pl, f, J);
  const T y = d.y[i * d.stride];
  T mag;
  if constexpr (has_additive_offset<Model>) {
    const T y0 = y - pl[0];  // exact when y and the offset are close
    r = y0 - f;
    mag = vabs(y0) + vabs(f);
    f = pl[0] + f;
  } else {
    r = y - f;
    mag = vabs(y) + vabs(f);
  }
  dev_term = T(0);
  bad = T(1) < T(0);
  if (mle || d.w != nullptr) {
    T w;
    if (mle) {
      // Deviance term 2 (f - y - y ln(f / y)), with ln(f / y) as
      // log1p(-r / y) so that it keeps the precision of the residual.
      w = T(1) / f;
      const T ylog = select(y > T(0), y * vlog1p(-r / select(y > T(0), y, T(1))), T(0));
      dev_term = T(S(2)) * (-r - ylog);
      bad = !(f > T(0));
      err_term = T(4) * r * r;
    } else {
      w = d.w[i * d.stride];
      err_term = w * w * (r * r + rounding_floor<S>() * mag * mag) * mag * mag;
    }
    const T sw = vsqrt(w);
    for (int a = 0; a < P; ++a) J[a] *= sw;
    r *= sw;
  } else {
    err_term = (r * r + rounding_floor<S>() * mag * mag) * mag * mag;
  }
}

// chi2 and its rounding error from the sums over the points: the MLE deviance
// dev or, for least squares, the element (P, P) of N = [J | r]^T [J | r]; +inf
// where the MLE model was not positive. err2 is the sum of the points' error
// terms (lm_point).
template <int P, class T>
TESSERA_HD void lm_chi2(bool mle, MaskOf<T> bad, T dev, T err2, const T* N, T& chi2,
                        T& chi2_err) {
  using S = ScalarOf<T>;
  chi2 = select(bad, T(S(1) / S(0)), mle ? dev : N[tri(P, P)]);
  chi2_err = T(machine_epsilon<S>()) * vsqrt(err2);  // two unit roundoffs
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
  T pl[P];
  for (int j = 0; j < P; ++j) pl[j] = p[j];
  for (int i0 = 0; i0 < d.n; i0 += Tile) {
    const int m = d.n - i0 < Tile ? d.n - i0 : Tile;
    for (int t = 0; t < m; ++t) {
      T J[P], r, dev_t, err_t;
      MaskOf<T> bad_t;
      lm_point<P>(model, d, mle, pl, i0 + t, J, r, dev_t, err_t, bad_t);
      dev += dev_t;
      err2 += err_t;
      bad = bad | bad_t;
      for (int a = 0; a < P; ++a) A[a][t] = J[a];
      A[P][t] = r;
    }
    accumulate_normal<Q, QP, Tile, R, C>(A, m, N);
  }
  for (int k = 0; k < tri_size<P>; ++k) H[k] = N[k];
  for (int a = 0; a < P; ++a) g[a] = N[tri(P, a)];
  lm_chi2<P>(mle, bad, dev, err2, N, chi2, chi2_err);
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

// A trial point and what the acceptance test needs of it (lm_step).
template <class T, int P> struct LMTrial {
  T pt[P];
  MaskOf<T> solved;
  T pred;    // predicted chi2 reduction
  T step2;   // ||sqrt(D) delta||^2
  T pnorm2;  // ||sqrt(D) p||^2
  T quad;    // delta^T H delta
};

// The damped system of a step, in the equilibrated variables: A (packed, then
// its Cholesky factor), the scaling sc = 1 / sqrt(D) and the right-hand side z
// (then the solution).
template <class T, int P> struct LMStepSystem {
  T A[tri_size<P>];
  T sc[P];
  T z[P];
};

// The lanes that take a step this iteration (not done, not fresh).
template <int P, class T> TESSERA_HD MaskOf<T> lm_stepping(const LMState<T, P>& s) {
  const MaskOf<T> active = !s.done;
  return active & !s.fresh;
}

// A trial point that is the current point (a lane that takes no step).
template <int P, class T>
TESSERA_HD void lm_trial_at_p(const LMState<T, P>& s, LMTrial<T, P>& tr) {
  for (int j = 0; j < P; ++j) tr.pt[j] = s.p[j];
  tr.solved = T(1) < T(0);
  tr.pred = tr.step2 = tr.pnorm2 = tr.quad = T(0);
}

// The system (H + lambda diag(D)) delta = g of a step, scaled to unit diagonal.
template <int P, class T>
TESSERA_HD void lm_step_system(const LMConfig<ScalarOf<T>, P>& c, const LMState<T, P>& s,
                               LMStepSystem<T, P>& sys) {
  using S = ScalarOf<T>;
  using M = MaskOf<T>;
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
    sys.sc[j] = c.free[j] ? T(1) / vsqrt(s.D[j]) : T(0);
    sys.z[j] = select(held[j], T(0), s.g[j] * sys.sc[j]);
  }
  for (int i = 0; i < P; ++i)
    for (int j = 0; j <= i; ++j) {
      const T unit = T(i == j ? S(1) : S(0));
      if (c.free[i] && c.free[j])
        sys.A[tri(i, j)] =
            select(held[i] | held[j], unit,
                   s.H[tri(i, j)] * sys.sc[i] * sys.sc[j] + (i == j ? s.lambda : T(0)));
      else
        sys.A[tri(i, j)] = unit;
    }
}

// The pivot tolerance of the step's factorisation.
template <class S> TESSERA_HD constexpr S lm_step_pivot_eps() {
  return S(16) * machine_epsilon<S>();
}

// The step from the factorised system (solved: the factorisation's mask): the
// trial point, projected on the bounds, and what the acceptance test needs.
template <int P, class T>
TESSERA_HD void lm_step_finish(const LMConfig<ScalarOf<T>, P>& c, const LMState<T, P>& s,
                               LMStepSystem<T, P>& sys, MaskOf<T> solved, LMTrial<T, P>& tr) {
  const MaskOf<T> stepping = lm_stepping<P>(s);
  T* pt = tr.pt;
  T pred = T(0), step2 = T(0), pnorm2 = T(0), quad = T(0);
  cholesky_solve<P>(sys.A, sys.z);
  T delta[P];
  for (int j = 0; j < P; ++j) {
    if (c.free[j]) {
      const T t = vmin(vmax(s.p[j] + sys.z[j] * sys.sc[j], T(c.lo[j])), T(c.hi[j]));
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
  tr.solved = solved;
  tr.pred = pred;
  tr.step2 = step2;
  tr.pnorm2 = pnorm2;
  tr.quad = quad;
}

// The first half of an iteration: the damped step from s and the trial point
// (s itself unchanged; a fresh lane's trial point is its start).
template <int P, class T>
TESSERA_HD void lm_propose(const LMConfig<ScalarOf<T>, P>& c, const LMState<T, P>& s,
                           LMTrial<T, P>& tr) {
  lm_trial_at_p<P>(s, tr);
  if (any(lm_stepping<P>(s))) {
    LMStepSystem<T, P> sys;
    lm_step_system<P>(c, s, sys);
    const MaskOf<T> solved = cholesky<P>(sys.A, lm_step_pivot_eps<ScalarOf<T>>());
    lm_step_finish<P>(c, s, sys, solved, tr);
  }
}

// The second half: chi2t, its rounding error errt, Ht and gt evaluated at
// the trial point decide acceptance, damping, convergence and the state.
template <int P, class T>
TESSERA_HD void lm_accept(const LMConfig<ScalarOf<T>, P>& c, const LMTrial<T, P>& tr, T chi2t,
                          T errt, const T* Ht, const T* gt, LMState<T, P>& s) {
  using S = ScalarOf<T>;
  using M = MaskOf<T>;
  const M active = !s.done;
  const M fresh = active & s.fresh;
  const M stepping = lm_stepping<P>(s);
  const T* pt = tr.pt;
  const M solved = tr.solved;
  const T pred = tr.pred, step2 = tr.step2, pnorm2 = tr.pnorm2, quad = tr.quad;
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

// One iteration for every lane that is not done.
template <int P, class Model, class T>
TESSERA_HD void lm_step(const Model& model, const LMData<T>& d, const LMConfig<ScalarOf<T>, P>& c,
                        LMState<T, P>& s) {
  LMTrial<T, P> tr;
  lm_propose<P>(c, s, tr);
  T chi2t, errt, Ht[tri_size<P>], gt[P];
  lm_evaluate<P>(model, d, c.estimator, tr.pt, chi2t, errt, Ht, gt);
  lm_accept<P>(c, tr, chi2t, errt, Ht, gt, s);
}

// The scaled normal matrix of a finished fit, factored: H / sqrt(D_i D_j)
// (identity rows for fixed parameters), its Cholesky factor in A, whether the
// factorisation succeeded, and the covariance's scale (chi2 / (n - n_free) for
// least squares, 1 for MLE). Shared by lm_finalize and lm_covariance.
template <class T, int P> struct LMFactor {
  T sc[P];               // 1 / sqrt(D_j) for free parameters, 0 for fixed ones
  T A[tri_size<P>];      // Cholesky factor of the scaled matrix
  MaskOf<T> ok;          // the factorisation succeeded
  T scale;
};

template <int P, class T>
TESSERA_HD void lm_factor(const LMConfig<ScalarOf<T>, P>& c, int n_points, const LMState<T, P>& s,
                          LMFactor<T, P>& f) {
  using S = ScalarOf<T>;
  constexpr S eps = machine_epsilon<S>();
  const S nan = S(0) / S(0);
  for (int j = 0; j < P; ++j) f.sc[j] = c.free[j] ? T(1) / vsqrt(s.D[j]) : T(0);
  for (int i = 0; i < P; ++i)
    for (int j = 0; j <= i; ++j)
      f.A[tri(i, j)] = (c.free[i] && c.free[j]) ? s.H[tri(i, j)] * f.sc[i] * f.sc[j]
                                                : T(i == j ? S(1) : S(0));
  // The scaled diagonal is H_jj / max over the fit of H_jj: a parameter whose
  // effect has fallen below 16 eps of its largest effect during the fit (an
  // amplitude that collapsed to zero takes its position and width with it) is
  // no longer determined, and the fit is singular.
  f.ok = cholesky<P>(f.A, S(16) * eps, S(16) * eps);
  const int dof = n_points - c.n_free();
  f.scale = T(1);
  if (c.estimator == Estimator::lse) f.scale = dof > 0 ? s.chi2 / T(S(dof)) : T(nan);
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
  const S nan = S(0) / S(0);
  LMFactor<T, P> f;
  lm_factor<P>(c, n_points, s, f);
  T inv[P];
  cholesky_inverse_diagonal<P>(f.A, inv);
  const M fitted = (s.state == T(state_value(FitState::converged))) |
                   (s.state == T(state_value(FitState::iteration_limit)));
  state = select(fitted & !f.ok, T(state_value(FitState::singular)), s.state);
  const M good = fitted & f.ok;
  for (int j = 0; j < P; ++j) {
    const T sg = c.free[j] ? vsqrt(inv[j] * f.scale) * f.sc[j] : T(0);
    params[j] = select(good, s.p[j], T(nan));
    sigma[j] = select(good, sg, T(nan));
  }
}

// The whole covariance matrix of a finished fit (packed lower triangle,
// cov[tri(i, j)]), of which lm_finalize's sigma are the square roots of the
// diagonal: what the uncertainty of a function of several parameters needs.
// Rows and columns of fixed parameters are 0; NaN where lm_finalize gives NaN.
template <int P, class T>
TESSERA_HD void lm_covariance(const LMConfig<ScalarOf<T>, P>& c, int n_points, const LMState<T, P>& s,
                              T* cov) {
  using S = ScalarOf<T>;
  using M = MaskOf<T>;
  const S nan = S(0) / S(0);
  LMFactor<T, P> f;
  lm_factor<P>(c, n_points, s, f);
  cholesky_inverse<P>(f.A, cov);
  const M fitted = (s.state == T(state_value(FitState::converged))) |
                   (s.state == T(state_value(FitState::iteration_limit)));
  const M good = fitted & f.ok;
  for (int i = 0; i < P; ++i)
    for (int j = 0; j <= i; ++j)
      cov[tri(i, j)] = select(good, cov[tri(i, j)] * f.scale * f.sc[i] * f.sc[j], T(nan));
}

template <class T, int P> struct LMResult {
  T params[P];
  T sigma[P];
  T chi2;
  int iterations;
  FitState state;
};

// The result of a finished scalar fit (lm_finalize applied).
template <int P, class T>
TESSERA_HD LMResult<T, P> lm_result(const LMConfig<ScalarOf<T>, P>& c, int n_points,
                                    const LMState<T, P>& s) {
  LMResult<T, P> r;
  T state;
  lm_finalize<P>(c, n_points, s, r.params, r.sigma, state);
  r.chi2 = s.chi2;
  r.iterations = int(s.iter);
  r.state = FitState(int(state));
  return r;
}

// A whole fit of one spectrum: the scalar path (tests, one CUDA thread per fit).
template <int P, class Model, class T>
TESSERA_HD LMResult<T, P> lm_fit(const Model& model, const LMData<T>& d,
                                 const LMConfig<ScalarOf<T>, P>& c, const T* p0) {
  LMState<T, P> s;
  lm_init<P>(c, p0, s);
  while (!s.done) lm_step<P>(model, d, c, s);
  return lm_result<P>(c, d.n, s);
}

}  // namespace tessera::core

// Warp per fit: the 32 lanes of a CUDA warp share one fit, for the large
// models whose normal equations do not fit one thread's registers (4 or more
// peaks by default; the reasoning is in fit_kernels.cuh). Written as TESSERA_HD
// code over a `Warp` policy, so that the kernel (DeviceWarp, fit_kernels.cuh)
// and the host tests (HostWarp, tests/cuda/test_fit_pixel.cpp) run the same
// functions.
// No CUDA header is needed here.
//
// Who does what, per LM iteration:
//  - lane 0 alone builds the damped step's system (core::lm_step_system),
//    solves it (core::lm_step_finish) and runs the acceptance test
//    (core::lm_accept), on the fit's state in the warp's scratch (shared memory
//    on the device), exactly as one thread would; the Cholesky factorisation
//    between them is shared: for each column, lane 0 takes the pivot, then
//    lane l computes row j + 1 + l (core::cholesky_pivot and
//    core::cholesky_below, the serial loop's own steps), which cuts its chain of
//    dependent operations from about P^3/6 to P^2;
//  - the evaluation at the trial point, which is where a large fit spends its
//    time, is split: for each block of 32 sweep points, lane l evaluates the
//    model at point l (core::lm_point, the CPU's own per-point code) and writes
//    the row [sqrt(w) J | sqrt(w) r] into the scratch; then each lane owns the
//    entries l, l + 32, l + 64, ... of the packed (P+1) x (P+1) matrix
//    N = [J | r]^T [J | r] and adds the block's products to them, point by
//    point in sweep order, in tiles of core::Traits<float>::eval_tile points as
//    core::lm_evaluate does. Every entry is therefore summed in the same order
//    with the same operations as in the one-thread fit, and on the host (where
//    the tests run it) the warp's results are bit-identical to lm_fit's.
// The deviance and rounding-error sums are added by lane 0 in point order.
//
// Phases are separated by the policy: `lanes(f)` runs f(lane) on every lane and
// then synchronises the warp; `single(f)` runs f on lane 0 and synchronises.
// Control flow outside them reads only the scratch, after a synchronisation,
// so every lane takes the same branches.
#pragma once

#include "core/lm.hpp"
#include "fit_pixel.hpp"

namespace tessera::cuda {

inline constexpr int warp_lanes = 32;

// One warp's working memory (shared memory on the device: 8.9 KB for 8 peaks
// with a linear background, P = 26).
template <int P> struct WarpFitScratch {
  static constexpr int Q = P + 1;
  // Rows of 33: lanes that read different rows at the same point fall in
  // different shared-memory banks.
  float A[Q][warp_lanes + 1];  // sqrt(w) J_a and sqrt(w) r (row P) of up to 32 points
  float dev[warp_lanes];       // the points' deviance terms (MLE)
  float err2[warp_lanes];      // the points' rounding-error terms
  bool bad[warp_lanes];        // MLE model not positive at the point
  float N[core::tri_size<Q>];  // [J | r]^T [J | r]: Ht, then gt (row P), then chi2
  float chi2t, errt;
  core::LMState<float, P> s;
  core::LMTrial<float, P> tr;
  core::LMStepSystem<float, P> sys;  // the step's system and its factor
  bool run;       // the spectrum is fitted (not masked, finite)
  bool stepping;  // this iteration takes a step (not the start's evaluation)
  bool solved;    // the step's factorisation succeeded
};

// The host's stand-in for a warp: the lanes one after the other.
struct HostWarp {
  template <class F> void lanes(F&& f) const {
    for (int l = 0; l < warp_lanes; ++l) f(l);
  }
  template <class F> void single(F&& f) const { f(); }
};

// Row a and column b (b <= a) of entry k of a packed lower triangle, advanced
// from the entry `step` before it.
TESSERA_HD inline void tri_advance(int& a, int& b, int step) {
  b += step;
  while (b > a) {
    b -= a + 1;
    ++a;
  }
}

// core::cholesky<P>(A, rel_eps) with the rows of each column on the lanes; the
// success mask into `ok`.
template <int P, class Warp>
TESSERA_HD void warp_cholesky(const Warp& w, float* A, float rel_eps, bool& ok) {
  for (int j = 0; j < P; ++j) {
    w.single([&] {
      const bool good = core::cholesky_pivot(A, j, rel_eps, 0.0f);
      ok = (j == 0 ? true : ok) & good;
    });
    w.lanes([&](int l) {
      const float inv = 1.0f / A[core::tri(j, j)];
      for (int i = j + 1 + l; i < P; i += warp_lanes) core::cholesky_below(A, i, j, inv);
    });
  }
}

// chi2, its rounding error and N at the trial point sh.tr.pt: lm_evaluate
// shared by the lanes (see the top of this file).
template <int P, class Warp, class Model>
TESSERA_HD void warp_evaluate(const Warp& w, const Model& model, const core::LMData<float>& d,
                              bool mle, WarpFitScratch<P>& sh) {
  constexpr int NQ = core::tri_size<P + 1>;
  constexpr int Tile = core::Traits<float>::eval_tile;
  static_assert(warp_lanes % Tile == 0, "a block of points must hold whole tiles");
  float dev = 0.0f, err2 = 0.0f;  // lane 0's sums
  bool bad = false;
  for (int i0 = 0; i0 < d.n; i0 += warp_lanes) {
    const int m = d.n - i0 < warp_lanes ? d.n - i0 : warp_lanes;
    w.lanes([&](int l) {
      if (l >= m) return;
      float pl[P];  // a private copy, as in lm_evaluate
      for (int j = 0; j < P; ++j) pl[j] = sh.tr.pt[j];
      float J[P], r, dev_t, err_t;
      bool bad_t;
      core::lm_point<P>(model, d, mle, pl, i0 + l, J, r, dev_t, err_t, bad_t);
      for (int a = 0; a < P; ++a) sh.A[a][l] = J[a];
      sh.A[P][l] = r;
      sh.dev[l] = dev_t;
      sh.err2[l] = err_t;
      sh.bad[l] = bad_t;
    });
    w.lanes([&](int l) {
      int a = 0, b = 0;
      tri_advance(a, b, l);
      for (int k = l; k < NQ; k += warp_lanes) {
        float n = i0 == 0 ? 0.0f : sh.N[k];
        for (int t0 = 0; t0 < m; t0 += Tile) {
          const int t1 = t0 + Tile < m ? t0 + Tile : m;
          float acc = 0.0f;
          for (int t = t0; t < t1; ++t) acc = core::vfma(sh.A[a][t], sh.A[b][t], acc);
          n += acc;
        }
        sh.N[k] = n;
        tri_advance(a, b, warp_lanes);
      }
      if (l == 0)
        for (int t = 0; t < m; ++t) {
          dev += sh.dev[t];
          err2 += sh.err2[t];
          bad = bad | sh.bad[t];
        }
    });
  }
  w.single([&] { core::lm_chi2<P>(mle, bad, dev, err2, sh.N, sh.chi2t, sh.errt); });
}

// Fits spectrum `pix` of the chunk with the whole warp; the same results, rules
// and outputs as fit_pixel.
template <class Warp, class Model>
TESSERA_HD void warp_fit_pixel(const Warp& w, const Model& model,
                               const core::LMConfig<float, Model::n_params>& cfg,
                               const SpectraChunk& c, int pix,
                               WarpFitScratch<Model::n_params>& sh) {
  constexpr int P = Model::n_params;
  w.single([&] {
    sh.run = accept_input<P>(cfg, c, pix);
    if (!sh.run) return;
    float p0[P];
    for (int j = 0; j < P; ++j) p0[j] = c.start[std::size_t(pix) * P + j];
    core::lm_init<P>(cfg, p0, sh.s);
  });
  if (!sh.run) return;
  const core::LMData<float> d = pixel_data<P>(cfg, c, pix);
  const bool mle = cfg.estimator == core::Estimator::mle;
  while (!sh.s.done) {
    // core::lm_propose, with the factorisation shared.
    w.single([&] {
      core::lm_trial_at_p<P>(sh.s, sh.tr);
      sh.stepping = core::lm_stepping<P>(sh.s);
      if (sh.stepping) core::lm_step_system<P>(cfg, sh.s, sh.sys);
    });
    if (sh.stepping) {
      warp_cholesky<P>(w, sh.sys.A, core::lm_step_pivot_eps<float>(), sh.solved);
      w.single([&] { core::lm_step_finish<P>(cfg, sh.s, sh.sys, sh.solved, sh.tr); });
    }
    warp_evaluate<P>(w, model, d, mle, sh);
    w.single([&] {
      core::lm_accept<P>(cfg, sh.tr, sh.chi2t, sh.errt, sh.N, sh.N + core::tri_size<P>, sh.s);
    });
  }
  w.single([&] { store_fit<P>(c, pix, core::lm_result<P>(cfg, d.n, sh.s)); });
}

}  // namespace tessera::cuda

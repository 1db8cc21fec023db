// The LM core below the batch engine: small linear algebra, the stopping rule
// on normalised data (no absolute chi-square threshold), and the scalar path
// (one CUDA thread per fit) against the SIMD-lane path of the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/fit_input.hpp"
#include "core/lm.hpp"
#include "core/models/peaks.hpp"
#include "core/pack.hpp"
#include "core/threads.hpp"

using namespace tessera::core;

TEST(Linalg, CholeskySolvesAndInvertsKnownMatrix) {
  // A = [[4, 2, 0.4], [2, 5, 1], [0.4, 1, 3]]: solve A x = b and diag(A^-1),
  // against values computed by hand (cofactors; det = 45.08).
  double A[6] = {4, 2, 5, 0.4, 1, 3};
  double b[3] = {1, 2, 3};
  ASSERT_TRUE(cholesky<3>(A, 1e-14));
  double x[3] = {b[0], b[1], b[2]};
  cholesky_solve<3>(A, x);
  const double det = 4 * (15 - 1) - 2 * (6 - 0.4) + 0.4 * (2 - 2);
  EXPECT_NEAR(det, 44.8, 1e-12);
  // A^-1 = adj(A) / det.
  const double inv[3][3] = {{14 / det, -5.6 / det, 0 / det},
                            {-5.6 / det, 11.84 / det, -3.2 / det},
                            {0 / det, -3.2 / det, 16 / det}};
  for (int i = 0; i < 3; ++i) {
    const double want = inv[i][0] * b[0] + inv[i][1] * b[1] + inv[i][2] * b[2];
    EXPECT_NEAR(x[i], want, 1e-12);
  }
  double d[3];
  cholesky_inverse_diagonal<3>(A, d);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(d[i], inv[i][i], 1e-12);
}

TEST(Linalg, CholeskyFlagsSingularLanesOnly) {
  using P4 = Pack<float, 4>;
  // Lane 0: identity; lane 1: rank one [[1, 1], [1, 1]]; lane 2: not positive.
  P4 A[3];
  const float a00[4] = {1, 1, -1, 2}, a10[4] = {0, 1, 0, 1}, a11[4] = {1, 1, 1, 2};
  for (int l = 0; l < 4; ++l) {
    A[0].set(l, a00[l]);
    A[1].set(l, a10[l]);
    A[2].set(l, a11[l]);
  }
  const auto ok = cholesky<2>(A, 1e-6f);
  EXPECT_TRUE(ok[0]);
  EXPECT_FALSE(ok[1]);
  EXPECT_FALSE(ok[2]);
  EXPECT_TRUE(ok[3]);
  EXPECT_TRUE(std::isfinite(A[2][1]));  // a failed lane stays finite
}

namespace {

constexpr int P2 = 7;
using Model2 = Lorentzian<2, false>;

std::vector<double> sweep(int n) {
  std::vector<double> x(n);
  for (int i = 0; i < n; ++i) x[i] = 2800 + 140.0 * i / (n - 1);
  return x;
}

template <class T> LMConfig<T, P2> free_config(T tol) {
  LMConfig<T, P2> c;
  for (int j = 0; j < P2; ++j) {
    c.free[j] = true;
    c.lo[j] = -INFINITY;
    c.hi[j] = INFINITY;
  }
  c.ftol = c.xtol = tol;
  c.max_iter = 1000;
  return c;
}

}  // namespace

// Normalised ODMR contrast with little noise has chi2 ~ 1e-6. A stopping test
// that turns absolute below chi2 = 1 (Gpufit's) stops such fits after a couple
// of iterations, far from the minimum. Ours must end where a fit with
// tolerances at the limit of double precision ends, well inside the errors.
TEST(LMStopping, NormalisedDataIsFittedToTheMinimum) {
  const auto x = sweep(100);
  Model2 m;
  const double truth[P2] = {1.0, 2850, 9, -0.01, 2890, 9, -0.01};
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0, 1e-4);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double f, J[P2];
    eval_full(m, x[i], truth, f, J);
    y[i] = f + noise(rng);
  }
  const double p0[P2] = {1.002, 2846, 11, -0.007, 2894, 7, -0.013};
  LMData<double> d{x.data(), y.data(), nullptr, int(x.size()), 1};
  const auto r = lm_fit<P2>(m, d, free_config<double>(1e-6), p0);
  const auto ref = lm_fit<P2>(m, d, free_config<double>(1e-15), p0);
  ASSERT_EQ(r.state, FitState::converged);
  ASSERT_EQ(ref.state, FitState::converged);
  EXPECT_LT(r.chi2, 1e-5);  // the regime where an absolute test would stop
  EXPECT_GT(r.iterations, 2);
  for (int j = 0; j < P2; ++j)
    EXPECT_LE(std::abs(r.params[j] - ref.params[j]), 0.01 * ref.sigma[j]) << "parameter " << j;
}

// The scalar float path (what a CUDA thread runs) and the SIMD lanes of the CPU
// engine run the same code in the same order, so on the host (no contraction
// of multiply-adds under -std=c++20) they give the same bits.
TEST(LMPaths, ScalarFloatAndPackLanesAgreeBitForBit) {
  constexpr int W = 8;
  using Lane = Pack<float, W>;
  const auto xd = sweep(100);
  const std::vector<float> x(xd.begin(), xd.end());
  Model2 m;
  std::mt19937_64 rng(17);
  std::normal_distribution<double> noise(0, 2e-3);
  std::vector<std::vector<float>> ys(W);
  std::vector<Lane> yl(x.size());
  for (int l = 0; l < W; ++l) {
    const double truth[P2] = {1.0, 2850.0 + l, 9, -0.01, 2890.0 - l, 9, -0.01};
    for (size_t i = 0; i < x.size(); ++i) {
      double f, J[P2];
      eval_full(m, xd[i], truth, f, J);
      ys[l].push_back(float(f + noise(rng)));
      yl[i].set(l, ys[l].back());
    }
  }
  const float p0[P2] = {1.0f, 2852, 10, -0.008f, 2888, 10, -0.008f};
  const auto cfg = free_config<float>(1e-6f);

  LMState<Lane, P2> s;
  Lane p0l[P2];
  for (int j = 0; j < P2; ++j) p0l[j] = Lane(p0[j]);
  lm_init<P2>(cfg, p0l, s);
  const LMData<Lane> dl{x.data(), yl.data(), nullptr, int(x.size()), 1};
  while (!all(s.done)) lm_step<P2>(m, dl, cfg, s);
  Lane params[P2], sigma[P2], state;
  lm_finalize<P2>(cfg, int(x.size()), s, params, sigma, state);

  for (int l = 0; l < W; ++l) {
    const LMData<float> d{x.data(), ys[l].data(), nullptr, int(x.size()), 1};
    const auto r = lm_fit<P2>(m, d, cfg, p0);
    ASSERT_EQ(int(r.state), int(state[l])) << "lane " << l;
    ASSERT_EQ(r.state, FitState::converged);
    EXPECT_EQ(float(r.iterations), s.iter[l]) << "lane " << l;
    for (int j = 0; j < P2; ++j) {
      EXPECT_EQ(r.params[j], params[j][l]) << "lane " << l << " p" << j;
      EXPECT_EQ(r.sigma[j], sigma[j][l]) << "lane " << l << " p" << j;
    }
  }
}

// The engine's threads treat subnormal floats as 0 for the guard's scope
// (core/threads.hpp), and the thread's previous mode comes back after it.
TEST(FlushSubnormals, FlushesInsideAndRestoresAfter) {
#if defined(TESSERA_HAVE_MXCSR)
  volatile float tiny = 1e-30f, scale = 1e-10f;  // product 1e-40: subnormal
  const float before = tiny * scale;
  EXPECT_GT(before, 0.0f);
  {
    const tessera::core::FlushSubnormals flush;
    EXPECT_EQ(tiny * scale, 0.0f);               // a subnormal result is flushed
    volatile float sub = before;
    EXPECT_EQ(sub * 1.0f, 0.0f);                 // a subnormal input reads as 0
  }
  EXPECT_EQ(tiny * scale, before);
#else
  GTEST_SKIP() << "no MXCSR on this CPU: FlushSubnormals is a no-op";
#endif
}

// first_nonfinite: the first NaN or infinity wherever it lies relative to the
// blocks of 1024 it scans, n when there is none.
TEST(FirstNonfinite, FindsTheFirstBadValueInAnyBlock) {
  std::vector<float> v(5000, 1.5f);
  EXPECT_EQ(tessera::core::first_nonfinite(v.data(), v.size()), v.size());
  EXPECT_EQ(tessera::core::first_nonfinite(v.data(), 0), 0u);
  for (const std::size_t at : {std::size_t(0), std::size_t(1023), std::size_t(1024), std::size_t(4999)}) {
    for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
      std::vector<float> w = v;
      w[at] = bad;
      if (at + 7 < w.size()) w[at + 7] = std::nanf("");  // a later one does not count
      EXPECT_EQ(tessera::core::first_nonfinite(w.data(), w.size()), at) << at;
      EXPECT_EQ(tessera::core::first_nonfinite(w.data(), at), at) << "bad value beyond n";
    }
  }
}

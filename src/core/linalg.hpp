// Small dense symmetric positive-definite algebra for the LM step, on P x P
// matrices stored as packed lower triangles (row i holds columns 0..i). Written
// for any value type (double, float, SIMD packs), so every operation is
// lane-wise and failures are reported as a mask rather than a branch.
#pragma once

#include "hd.hpp"
#include "scalar_math.hpp"

namespace tessera::core {

// Index of element (i, j), j <= i, in a packed lower triangle.
TESSERA_HD constexpr int tri(int i, int j) { return i * (i + 1) / 2 + j; }
template <int P> inline constexpr int tri_size = P * (P + 1) / 2;

// The two steps of the Cholesky factorisation, shared by the serial loop below
// and the CUDA warp-per-fit kernel (cuda/fit_warp.hpp), whose lanes compute the
// elements of a column at once: the same operations in the same order, so the
// same bits.
//
// Pivot j (columns 0..j-1 done): L_jj into A. Returns whether the pivot is above
// rel_eps times its original diagonal and above abs_min, and finite; a failed
// pivot becomes 1 so that the lane's arithmetic stays finite and harmless.
template <class T>
TESSERA_HD MaskOf<T> cholesky_pivot(T* A, int j, ScalarOf<T> rel_eps, ScalarOf<T> abs_min) {
  T d = A[tri(j, j)];
  const T diag = d;
  for (int k = 0; k < j; ++k) d -= A[tri(j, k)] * A[tri(j, k)];
  const MaskOf<T> good = (d > diag * rel_eps) & (d > T(abs_min));
  A[tri(j, j)] = vsqrt(select(good, d, T(1)));
  return good & finite(d);
}

// Element (i, j), i > j, once pivot j is done; inv_ljj = 1 / L_jj.
template <class T> TESSERA_HD void cholesky_below(T* A, int i, int j, T inv_ljj) {
  T s = A[tri(i, j)];
  for (int k = 0; k < j; ++k) s -= A[tri(i, k)] * A[tri(j, k)];
  A[tri(i, j)] = s * inv_ljj;
}

// In-place Cholesky factorisation A = L L^T. A pivot that is not above
// rel_eps times its original diagonal, or not above abs_min, marks the lane as
// failed (numerically singular); failed lanes get a unit pivot so that their
// arithmetic stays finite and harmless.
template <int P, class T>
TESSERA_HD MaskOf<T> cholesky(T* A, ScalarOf<T> rel_eps, ScalarOf<T> abs_min = 0) {
  MaskOf<T> ok = !(T(1) < T(0));  // all lanes true
  for (int j = 0; j < P; ++j) {
    ok = ok & cholesky_pivot(A, j, rel_eps, abs_min);
    const T inv = T(1) / A[tri(j, j)];
    for (int i = j + 1; i < P; ++i) cholesky_below(A, i, j, inv);
  }
  return ok;
}

// Solves L L^T x = b in place (b becomes x).
template <int P, class T> TESSERA_HD void cholesky_solve(const T* L, T* b) {
  for (int i = 0; i < P; ++i) {
    T s = b[i];
    for (int k = 0; k < i; ++k) s -= L[tri(i, k)] * b[k];
    b[i] = s / L[tri(i, i)];
  }
  for (int i = P - 1; i >= 0; --i) {
    T s = b[i];
    for (int k = i + 1; k < P; ++k) s -= L[tri(k, i)] * b[k];
    b[i] = s / L[tri(i, i)];
  }
}

// Diagonal of (L L^T)^-1 = sum over k of (L^-1)_{k,i}^2, computing L^-1 one
// column at a time (P^3/6 multiply-adds, no extra P x P storage).
template <int P, class T> TESSERA_HD void cholesky_inverse_diagonal(const T* L, T* diag) {
  for (int i = 0; i < P; ++i) diag[i] = T(0);
  for (int c = 0; c < P; ++c) {
    T col[P];  // column c of L^-1, rows c..P-1
    for (int i = c; i < P; ++i) {
      T s = (i == c) ? T(1) : T(0);
      for (int k = c; k < i; ++k) s -= L[tri(i, k)] * col[k];
      col[i] = s / L[tri(i, i)];
      diag[c] += col[i] * col[i];
    }
  }
}

// The whole of (L L^T)^-1, packed lower triangle: inv[tri(i, j)] = sum over k
// >= i of (L^-1)_{k,i} (L^-1)_{k,j}, from the columns of L^-1.
template <int P, class T> TESSERA_HD void cholesky_inverse(const T* L, T* inv) {
  T Li[P][P];  // Li[c][i] = (L^-1)_{i,c}, i >= c
  for (int c = 0; c < P; ++c)
    for (int i = c; i < P; ++i) {
      T s = (i == c) ? T(1) : T(0);
      for (int k = c; k < i; ++k) s -= L[tri(i, k)] * Li[c][k];
      Li[c][i] = s / L[tri(i, i)];
    }
  for (int i = 0; i < P; ++i)
    for (int j = 0; j <= i; ++j) {
      T s = T(0);
      for (int k = i; k < P; ++k) s += Li[i][k] * Li[j][k];
      inv[tri(i, j)] = s;
    }
}

}  // namespace tessera::core

// A SIMD pack of W scalars: one lane per pixel. The CPU backend instantiates the
// core templates with Pack<float, W>, W the floats of one vector register of the
// target (16 with AVX-512, 8 with AVX2, 4 otherwise: fit/batch_impl.hpp), so W
// independent fits advance in lock-step; every operation is lane-wise, so a
// lane's result never depends on what the other lanes hold (and a fit's bits do
// not depend on W). Host only (never seen by nvcc's device pass). Built on
// GCC/Clang vector extensions.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "scalar_math.hpp"

namespace tessera::core {

template <class S> struct LaneInt;
template <> struct LaneInt<float> { using type = std::int32_t; };
template <> struct LaneInt<double> { using type = std::int64_t; };

template <class S, int W> struct PackMask {
  using I = typename LaneInt<S>::type;
  typedef I V __attribute__((vector_size(sizeof(I) * W)));
  V v;
  friend PackMask operator&(PackMask a, PackMask b) { return {a.v & b.v}; }
  friend PackMask operator|(PackMask a, PackMask b) { return {a.v | b.v}; }
  friend PackMask operator!(PackMask a) { return {~a.v}; }
  bool operator[](int i) const { return v[i] != 0; }
  void set(int i, bool b) { v[i] = b ? I(-1) : I(0); }
  static PackMask all_of(bool b) {
    PackMask m;
    for (int i = 0; i < W; ++i) m.v[i] = b ? I(-1) : I(0);
    return m;
  }
};

template <class S, int W> struct Pack {
  typedef S V __attribute__((vector_size(sizeof(S) * W)));
  using Mask = PackMask<S, W>;
  V v;

  Pack() = default;
  Pack(S s) : v(V{} + s) {}  // broadcast; implicit so scalars mix freely
  static Pack from(V x) { Pack p; p.v = x; return p; }
  S operator[](int i) const { return v[i]; }
  void set(int i, S s) { v[i] = s; }

  Pack& operator+=(Pack b) { v += b.v; return *this; }
  Pack& operator-=(Pack b) { v -= b.v; return *this; }
  Pack& operator*=(Pack b) { v *= b.v; return *this; }
  Pack& operator/=(Pack b) { v /= b.v; return *this; }
  friend Pack operator+(Pack a, Pack b) { return from(a.v + b.v); }
  friend Pack operator-(Pack a, Pack b) { return from(a.v - b.v); }
  friend Pack operator*(Pack a, Pack b) { return from(a.v * b.v); }
  friend Pack operator/(Pack a, Pack b) { return from(a.v / b.v); }
  friend Pack operator-(Pack a) { return from(-a.v); }
  friend Mask operator<(Pack a, Pack b) { return {a.v < b.v}; }
  friend Mask operator<=(Pack a, Pack b) { return {a.v <= b.v}; }
  friend Mask operator>(Pack a, Pack b) { return {a.v > b.v}; }
  friend Mask operator>=(Pack a, Pack b) { return {a.v >= b.v}; }
  friend Mask operator==(Pack a, Pack b) { return {a.v == b.v}; }
};

template <class S, int W> struct Traits<Pack<S, W>> {
  using Scalar = S;
  using Mask = PackMask<S, W>;
  static constexpr int width = W;
  // 16 points per tile keep a 26-row tile in L1; 3 x 4 accumulators plus three
  // row values fit the 16 AVX2 registers (AVX-512 has 32: 4 x 4).
  static constexpr int eval_tile = 16;
#if defined(__AVX512F__)
  static constexpr int block_rows = 4;
#else
  static constexpr int block_rows = 3;
#endif
  static constexpr int block_cols = 4;
};

template <class S, int W> inline Pack<S, W> select(PackMask<S, W> m, Pack<S, W> a, Pack<S, W> b) {
  return Pack<S, W>::from(m.v ? a.v : b.v);
}
template <class S, int W>
inline PackMask<S, W> select(PackMask<S, W> m, PackMask<S, W> a, PackMask<S, W> b) {
  return {(a.v & m.v) | (b.v & ~m.v)};
}
template <class S, int W> inline bool any(PackMask<S, W> m) {
  for (int i = 0; i < W; ++i)
    if (m.v[i]) return true;
  return false;
}
template <class S, int W> inline bool all(PackMask<S, W> m) {
  for (int i = 0; i < W; ++i)
    if (!m.v[i]) return false;
  return true;
}

template <class S, int W> inline Pack<S, W> vmin(Pack<S, W> a, Pack<S, W> b) {
  return Pack<S, W>::from(a.v < b.v ? a.v : b.v);
}
template <class S, int W> inline Pack<S, W> vmax(Pack<S, W> a, Pack<S, W> b) {
  return Pack<S, W>::from(a.v > b.v ? a.v : b.v);
}
template <class S, int W> inline Pack<S, W> vabs(Pack<S, W> a) {
  return Pack<S, W>::from(a.v < S(0) ? -a.v : a.v);
}
// Per lane; GCC turns the loop into one rounding instruction (SSE4.1 and later).
template <class S, int W> inline Pack<S, W> vfloor(Pack<S, W> a) {
  Pack<S, W> r;
  for (int i = 0; i < W; ++i) r.v[i] = std::floor(a.v[i]);
  return r;
}
template <class S, int W> inline PackMask<S, W> finite(Pack<S, W> a) {
  return {(a.v - a.v) == S(0)};
}

// a * b + c with one rounding per lane: one vfmadd instruction where the
// target has FMA (the intrinsics keep accumulators in registers, which a
// lane-by-lane std::fma loop does not), std::fma per lane elsewhere.
template <class S, int W> inline Pack<S, W> vfma(Pack<S, W> a, Pack<S, W> b, Pack<S, W> c) {
  using V = typename Pack<S, W>::V;
#if defined(__FMA__)
  if constexpr (std::is_same_v<S, float> && W == 8)
    return Pack<S, W>::from(V(_mm256_fmadd_ps(__m256(a.v), __m256(b.v), __m256(c.v))));
  if constexpr (std::is_same_v<S, float> && W == 4)
    return Pack<S, W>::from(V(_mm_fmadd_ps(__m128(a.v), __m128(b.v), __m128(c.v))));
  if constexpr (std::is_same_v<S, double> && W == 4)
    return Pack<S, W>::from(V(_mm256_fmadd_pd(__m256d(a.v), __m256d(b.v), __m256d(c.v))));
#endif
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<S, float> && W == 16)
    return Pack<S, W>::from(V(_mm512_fmadd_ps(__m512(a.v), __m512(b.v), __m512(c.v))));
#endif
  Pack<S, W> r;
  for (int i = 0; i < W; ++i) r.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
  return r;
}

// See scalar_math.hpp: the empty asm makes the compiler materialise the pack in
// a vector register (one load) instead of re-reading memory at each use. The
// constraint "v" names xmm/ymm registers (and zmm with AVX-512); a pack wider
// than the target's registers is left alone.
template <class S, int W> inline void in_register(Pack<S, W>& a) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  constexpr int bytes = int(sizeof(S)) * W;
#if defined(__AVX512F__)
  constexpr int widest = 64;
#elif defined(__AVX__)
  constexpr int widest = 32;
#else
  constexpr int widest = 16;
#endif
  if constexpr (bytes <= widest) asm("" : "+v"(a.v));
#else
  (void)a;
#endif
}

// Lane-wise transcendental functions: the loop calls the scalar function of the
// C library for every lane (sqrt becomes one vsqrtps under -fno-math-errno).
#define TESSERA_PACK_UNARY(name, fn)                               \
  template <class S, int W> inline Pack<S, W> name(Pack<S, W> a) { \
    Pack<S, W> r;                                                  \
    for (int i = 0; i < W; ++i) r.v[i] = std::fn(a.v[i]);          \
    return r;                                                      \
  }
TESSERA_PACK_UNARY(vsqrt, sqrt)
TESSERA_PACK_UNARY(vexp, exp)
TESSERA_PACK_UNARY(vlog, log)
TESSERA_PACK_UNARY(vlog1p, log1p)
TESSERA_PACK_UNARY(vsin, sin)
TESSERA_PACK_UNARY(vcos, cos)
TESSERA_PACK_UNARY(vtan, tan)
TESSERA_PACK_UNARY(vatan, atan)
TESSERA_PACK_UNARY(vtanh, tanh)
TESSERA_PACK_UNARY(verf, erf)
#undef TESSERA_PACK_UNARY

}  // namespace tessera::core

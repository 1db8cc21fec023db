// A SIMD pack of W scalars: one lane per pixel. The CPU backend instantiates the
// core templates with Pack<float, 16> so that sixteen independent fits advance in
// lock-step, one per AVX-512 lane; every operation is lane-wise, so a lane's result
// never depends on what the other lanes hold. Host only (never seen by nvcc's
// device pass). Built on GCC/Clang vector extensions, which fall back to narrower
// instructions when the target lacks AVX-512.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

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
template <class S, int W> inline PackMask<S, W> finite(Pack<S, W> a) {
  return {(a.v - a.v) == S(0)};
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
TESSERA_PACK_UNARY(vsin, sin)
TESSERA_PACK_UNARY(vcos, cos)
#undef TESSERA_PACK_UNARY

}  // namespace tessera::core

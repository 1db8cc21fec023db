// Math on plain scalars (float, double), host and device. The same names are
// overloaded for SIMD packs in pack.hpp, so templated core code reads the same
// whichever type it is instantiated with.
#pragma once

#include <math.h>

#include "hd.hpp"

namespace tessera::core {

// Scalar type behind a value type: float for float and for Pack<float, W>.
template <class T> struct Traits {
  using Scalar = T;
  using Mask = bool;
  static constexpr int width = 1;
  // Points per tile and register block of the normal-equation accumulation
  // (lm_evaluate). On the host the tile matches the SIMD packs' (pack.hpp), so
  // a scalar fit sums in the same order as a CPU lane and gives the same bits;
  // on a device a tile would live in local memory, so a thread takes one point
  // at a time (its results differ from the CPU's by rounding only).
#if TESSERA_DEVICE_CODE
  static constexpr int eval_tile = 1;
#else
  static constexpr int eval_tile = 16;
#endif
  static constexpr int block_rows = 1;
  static constexpr int block_cols = 1;
};

template <class T> using ScalarOf = typename Traits<T>::Scalar;
template <class T> using MaskOf = typename Traits<T>::Mask;

// Asks for v to be held in a register at this point (pack.hpp: an empty asm on
// x86 SIMD packs); nothing for scalars. accumulate_normal loads each column
// value once and feeds it to several multiply-adds: without this, GCC's Haswell
// tuning folds the load into every one of them, and the loop becomes bound by
// loads instead of multiply-adds (15 loads per 12 FMAs instead of 7).
template <class T> TESSERA_HD inline void in_register(T&) {}

TESSERA_HD inline float vsqrt(float a) { return sqrtf(a); }
TESSERA_HD inline double vsqrt(double a) { return sqrt(a); }
TESSERA_HD inline float vexp(float a) { return expf(a); }
TESSERA_HD inline double vexp(double a) { return exp(a); }
TESSERA_HD inline float vlog(float a) { return logf(a); }
TESSERA_HD inline double vlog(double a) { return log(a); }
TESSERA_HD inline float vlog1p(float a) { return log1pf(a); }
TESSERA_HD inline double vlog1p(double a) { return log1p(a); }
TESSERA_HD inline float vsin(float a) { return sinf(a); }
TESSERA_HD inline double vsin(double a) { return sin(a); }
TESSERA_HD inline float vcos(float a) { return cosf(a); }
TESSERA_HD inline double vcos(double a) { return cos(a); }
TESSERA_HD inline float vtan(float a) { return tanf(a); }
TESSERA_HD inline double vtan(double a) { return tan(a); }
TESSERA_HD inline float vatan(float a) { return atanf(a); }
TESSERA_HD inline double vatan(double a) { return atan(a); }
TESSERA_HD inline float vtanh(float a) { return tanhf(a); }
TESSERA_HD inline double vtanh(double a) { return tanh(a); }
TESSERA_HD inline float verf(float a) { return erff(a); }
TESSERA_HD inline double verf(double a) { return erf(a); }
TESSERA_HD inline float vabs(float a) { return fabsf(a); }
TESSERA_HD inline double vabs(double a) { return fabs(a); }
TESSERA_HD inline float vfloor(float a) { return floorf(a); }
TESSERA_HD inline double vfloor(double a) { return floor(a); }
// a * b + c with one rounding. The build turns off implicit contraction of
// a * b + c (-ffp-contract=off) so that every code path rounds the same way;
// hot loops ask for fused multiply-adds explicitly with vfma.
TESSERA_HD inline float vfma(float a, float b, float c) { return fmaf(a, b, c); }
TESSERA_HD inline double vfma(double a, double b, double c) { return fma(a, b, c); }
TESSERA_HD inline float vmin(float a, float b) { return a < b ? a : b; }
TESSERA_HD inline double vmin(double a, double b) { return a < b ? a : b; }
TESSERA_HD inline float vmax(float a, float b) { return a > b ? a : b; }
TESSERA_HD inline double vmax(double a, double b) { return a > b ? a : b; }
// True when a is neither NaN nor infinite (written without isfinite so that it
// behaves the same under every compiler flag and on the device).
TESSERA_HD inline bool finite(float a) { return a - a == 0.0f; }
TESSERA_HD inline bool finite(double a) { return a - a == 0.0; }

TESSERA_HD inline float select(bool m, float a, float b) { return m ? a : b; }
TESSERA_HD inline double select(bool m, double a, double b) { return m ? a : b; }
TESSERA_HD inline bool select(bool m, bool a, bool b) { return m ? a : b; }
TESSERA_HD inline bool any(bool m) { return m; }
TESSERA_HD inline bool all(bool m) { return m; }

}  // namespace tessera::core

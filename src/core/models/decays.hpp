// Time-domain models for relaxometry and Rabi cubes (DESIGN.md). eval returns
// the value without the additive offset p[0] (model.hpp); eval_full adds it.
#pragma once

#include "../hd.hpp"
#include "../model.hpp"
#include "../scalar_math.hpp"

namespace tessera::core {

// offset + amp * exp(-(x / t1)^beta); parameters offset, amp, t1, beta.
// x is a delay (x >= 0); at x = 0 the model is offset + amp for any t1, beta.
struct StretchedExp {
  static constexpr int n_params = 4;
  static constexpr bool additive_offset = true;
  template <class T>
  TESSERA_HD void eval(ScalarOf<T> x, const T* p, T& f, T* J) const {
    using S = ScalarOf<T>;
    const T amp = p[1], t1 = p[2], beta = p[3];
    if (x > S(0)) {
      const T lr = vlog(T(x) / t1);  // ln(x / t1); NaN when t1 <= 0, which rejects the step
      const T q = vexp(beta * lr);   // (x / t1)^beta
      const T e = vexp(-q);
      f = amp * e;
      J[0] = T(1);
      J[1] = e;
      J[2] = amp * e * q * beta / t1;
      J[3] = -(amp * e * q * lr);
    } else {
      f = amp;
      J[0] = T(1);
      J[1] = T(1);
      J[2] = T(0);
      J[3] = T(0);
    }
  }
};

// offset + amp * exp(-x / tau) * cos(2 pi freq x + phase); parameters offset,
// amp, tau, freq, phase (freq in cycles per unit of x, phase in radians).
struct DampedCosine {
  static constexpr int n_params = 5;
  static constexpr bool additive_offset = true;
  template <class T>
  TESSERA_HD void eval(ScalarOf<T> x, const T* p, T& f, T* J) const {
    using S = ScalarOf<T>;
    constexpr double two_pi = 6.28318530717958647693;
    const T amp = p[1], tau = p[2], freq = p[3], phase = p[4];
    const T E = vexp(T(-x) / tau);
    const T w = T(S(two_pi) * x);
    const T arg = w * freq + phase;
    const T C = vcos(arg), Sn = vsin(arg);
    const T aE = amp * E;
    f = aE * C;
    J[0] = T(1);
    J[1] = E * C;
    J[2] = aE * C * T(x) / (tau * tau);
    J[3] = -(aE * Sn * w);
    J[4] = -(aE * Sn);
  }
};

}  // namespace tessera::core

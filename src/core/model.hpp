// What a model is to the engine. A model is a small struct with
//   static constexpr int n_params;
//   template <class T> TESSERA_HD void eval(ScalarOf<T> x, const T* p, T& f, T* J) const;
// computing f(x; p) and J[j] = df/dp_j analytically, for any value type T.
//
// A model whose value is p[0] + (the rest), like every model of DESIGN.md, says
//   static constexpr bool additive_offset = true;
// and returns only the rest in f (J[0] = 1 still). The engine then forms the
// residual as (y - p[0]) - rest: y and the offset are close, so their
// difference is exact, and the residual keeps the precision of the small rest
// instead of losing it to the offset. On normalised ODMR data (offset 1, 1 %
// dips) that is fifty times more precise in float.
#pragma once

#include "hd.hpp"
#include "scalar_math.hpp"

namespace tessera::core {

template <class Model>
inline constexpr bool has_additive_offset = requires { requires Model::additive_offset; };

// The model's full value f(x; p) (offset included) and its derivatives.
template <class Model, class T>
TESSERA_HD void eval_full(const Model& model, ScalarOf<T> x, const T* p, T& f, T* J) {
  model.eval(x, p, f, J);
  if constexpr (has_additive_offset<Model>) f = p[0] + f;
}

}  // namespace tessera::core

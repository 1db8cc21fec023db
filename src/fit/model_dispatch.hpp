// Run-time model choice -> compile-time core model. Every place that needs a
// concrete model (CPU batches, double evaluation, the CUDA kernels) goes through
// visit_model, so the list of instantiated models is written once.
#pragma once

#include <stdexcept>
#include <utility>

#include "core/models/decays.hpp"
#include "core/models/peaks.hpp"
#include "model_spec.hpp"

namespace tessera::fit {

namespace detail {
template <class Shape, bool Linear, class F>
decltype(auto) visit_peaks(const ModelSpec& s, F&& f) {
  auto make = [&](auto n) {
    core::PeakModel<Shape, decltype(n)::value, Linear> m;
    m.x_mid = s.x_mid;
    return f(m);
  };
  switch (s.n_peaks) {
    case 1: return make(std::integral_constant<int, 1>{});
    case 2: return make(std::integral_constant<int, 2>{});
    case 3: return make(std::integral_constant<int, 3>{});
    case 4: return make(std::integral_constant<int, 4>{});
    case 5: return make(std::integral_constant<int, 5>{});
    case 6: return make(std::integral_constant<int, 6>{});
    case 7: return make(std::integral_constant<int, 7>{});
    case 8: return make(std::integral_constant<int, 8>{});
  }
  throw std::invalid_argument("--peaks must be between 1 and 8");
}

template <class Shape, class F> decltype(auto) visit_shape(const ModelSpec& s, F&& f) {
  if (s.linear_background) return visit_peaks<Shape, true>(s, std::forward<F>(f));
  return visit_peaks<Shape, false>(s, std::forward<F>(f));
}
}  // namespace detail

// Calls f(model) with the core model object that `spec` names.
template <class F> decltype(auto) visit_lorentzian(const ModelSpec& s, F&& f) {
  return detail::visit_shape<core::LorentzianShape>(s, std::forward<F>(f));
}
template <class F> decltype(auto) visit_gaussian(const ModelSpec& s, F&& f) {
  return detail::visit_shape<core::GaussianShape>(s, std::forward<F>(f));
}
template <class F> decltype(auto) visit_decay(const ModelSpec& s, F&& f) {
  if (s.kind == ModelKind::stretched_exp) return f(core::StretchedExp{});
  return f(core::DampedCosine{});
}
template <class F> decltype(auto) visit_model(const ModelSpec& s, F&& f) {
  switch (s.kind) {
    case ModelKind::lorentzian: return visit_lorentzian(s, std::forward<F>(f));
    case ModelKind::gaussian: return visit_gaussian(s, std::forward<F>(f));
    default: return visit_decay(s, std::forward<F>(f));
  }
}

}  // namespace tessera::fit

// Included by the C++ that tessera generates for a model of the user's own
// (expr_model.hpp, jit.hpp): the batch engine of the built-in models, and the
// entry points the command finds in the compiled shared object.
#pragma once

#include "fit/batch_impl.hpp"

namespace tessera::fit {

// Changes whenever the types the entry points pass (FitBatch, FitOptions,
// FitResults) change layout; a cached object of another ABI is rebuilt.
inline constexpr int jit_abi = 3;

}  // namespace tessera::fit

#define TESSERA_JIT_ENTRY(Model)                                                                   \
  extern "C" int tessera_jit_abi() { return tessera::fit::jit_abi; }                               \
  extern "C" void tessera_jit_fit(const tessera::fit::FitBatch* batch,                             \
                                  const tessera::fit::FitOptions* options,                         \
                                  tessera::fit::FitResults* results) {                             \
    tessera::fit::detail::run_batch(Model{}, *batch, *options, *results);                         \
  }                                                                                                \
  extern "C" void tessera_jit_covariance(const tessera::fit::FitBatch* batch, const std::int32_t* state, \
                                         const tessera::fit::FitOptions* options, float* cov) {    \
    tessera::fit::detail::covariance_at(Model{}, *batch, state, *options, cov);                   \
  }

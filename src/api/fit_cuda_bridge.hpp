// The CPU side's model and options in the plain structs of the GPU backend
// (cuda/fit_cuda.hpp takes no src/fit types, so that nvcc never sees them).
#pragma once

#include <string>

#include "cuda/fit_cuda.hpp"
#include "fit/batch.hpp"

namespace tessera::api {

// The GPU's model kinds mirror the CPU's by value (the cast in to_cuda); a
// model of the user's own (ModelKind::expression) is FitModelKind::user.
static_assert(int(cuda::FitModelKind::lorentzian) == int(fit::ModelKind::lorentzian) &&
              int(cuda::FitModelKind::gaussian) == int(fit::ModelKind::gaussian) &&
              int(cuda::FitModelKind::stretched_exp) == int(fit::ModelKind::stretched_exp) &&
              int(cuda::FitModelKind::damped_cosine) == int(fit::ModelKind::damped_cosine) &&
              int(cuda::FitModelKind::user) == int(fit::ModelKind::expression));
static_assert(cuda::fit_max_peaks == core::max_peaks);

// user: the loaded kernels of a model of the user's own (null otherwise).
inline cuda::FitModelDesc to_cuda(const fit::ModelSpec& s, const cuda::UserKernels* user = nullptr) {
  cuda::FitModelDesc m;
  m.kind = static_cast<cuda::FitModelKind>(static_cast<int>(s.kind));
  m.n_peaks = s.n_peaks;
  m.linear_background = s.linear_background;
  m.x_mid = s.x_mid;
  m.n_params = s.n_params();
  m.user = user;
  return m;
}

inline cuda::FitConfigDesc to_cuda(const fit::ModelSpec& s, const fit::FitOptions& o) {
  cuda::FitConfigDesc c;
  c.estimator = o.estimator;
  c.max_iter = o.max_iter;
  c.tol = float(o.tol);
  for (int j = 0; j < s.n_params() && j < int(o.constraints.size()); ++j) {
    c.fixed[j] = o.constraints[j].fixed;
    c.lo[j] = float(o.constraints[j].lo);
    c.hi[j] = float(o.constraints[j].hi);
  }
  return c;
}

// --gpu-kernel (auto, thread, warp; checked by the caller).
inline cuda::FitKernel to_cuda_kernel(const std::string& name) {
  if (name == "thread") return cuda::FitKernel::thread_per_fit;
  if (name == "warp") return cuda::FitKernel::warp_per_fit;
  return cuda::FitKernel::automatic;
}

}  // namespace tessera::api

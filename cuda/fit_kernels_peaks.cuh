// Run-time choice among the compiled peak-model kernels of one line shape:
// 1..fit_max_peaks peaks, constant or linear background (internal to cuda/).
#pragma once

#include "core/models/peaks.hpp"
#include "fit_kernels.cuh"

namespace tessera::cuda {

template <class Shape, int N = 1>
bool launch_peaks(const FitModelDesc& desc, const FitConfigDesc& config, const SpectraChunk& chunk,
                  cudaStream_t stream) {
  if constexpr (N > fit_max_peaks) {
    return false;
  } else {
    if (desc.n_peaks != N) return launch_peaks<Shape, N + 1>(desc, config, chunk, stream);
    if (desc.linear_background) {
      core::PeakModel<Shape, N, true> model;
      model.x_mid = desc.x_mid;
      launch_model(model, config, chunk, stream);
    } else {
      core::PeakModel<Shape, N, false> model;
      model.x_mid = desc.x_mid;
      launch_model(model, config, chunk, stream);
    }
    return true;
  }
}

}  // namespace tessera::cuda

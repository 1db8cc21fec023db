// The GPU part of masked xcorr (src/xcorr/masked.hpp): the double-precision
// correlations of a masked pair's arrays, by cuFFT D2Z/Z2D. Everything else of
// a masked pair (which sums, the unmasked side's window tables, the rounding
// of counts, the bounds, R by core::zncc_masked, the peak and the --top
// candidates) stays the host's own code, so the GPU changes only how the
// correlations round (cuFFT against FFTW), not what is computed. Plain host
// types: no CUDA header needed to call it.
#pragma once

#include <memory>

namespace tessera::cuda {

class MaskedCorrelatorCuda {
 public:
  // On the current device (cuda::set_device first). Throws std::runtime_error
  // (one line) for a CUDA or cuFFT error, including no device.
  MaskedCorrelatorCuda();
  ~MaskedCorrelatorCuda();
  MaskedCorrelatorCuda(const MaskedCorrelatorCuda&) = delete;
  MaskedCorrelatorCuda& operator=(const MaskedCorrelatorCuda&) = delete;

  // out = the circular correlation of the py x px real arrays a (an image's,
  // zero-padded) and b (a template's, flipped and zero-padded), as the CPU
  // computes it: the inverse transform of FFT(a) * FFT(b) / (py * px). Host
  // arrays, row-major; synchronous.
  void correlate(const double* a, const double* b, int py, int px, double* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::cuda

// The GPU fit backend as one plain host function: host arrays in, host arrays
// out. Plain structs only, so that callers (src/fit drivers, tests) need neither
// nvcc nor CUDA headers, and nvcc never sees the std-heavy driver headers. One
// CUDA thread runs one whole fit with tessera::core::lm_fit<float>, the same
// function the CPU backend runs lane-wise; large models give each fit a warp
// that runs the same steps with the evaluation split over its lanes
// (fit_warp.hpp).
#pragma once

#include <cstdint>
#include <limits>

#include "core/fit_types.hpp"
#include "core/peak_layout.hpp"

namespace tessera::cuda {

// Same values as tessera::fit::ModelKind (user: ModelKind::expression).
enum class FitModelKind : int {
  lorentzian = 0,
  gaussian = 1,
  stretched_exp = 2,
  damped_cosine = 3,
  user = 4,  // a model of the user's own, compiled by NVRTC (user_kernels.hpp)
};

inline constexpr int fit_max_peaks = core::max_peaks;
inline constexpr int fit_max_params = core::max_params;

class UserKernels;

struct FitModelDesc {
  FitModelKind kind = FitModelKind::lorentzian;
  int n_peaks = 1;                 // peak models: 1..fit_max_peaks
  bool linear_background = false;  // peak models: adds `slope`
  double x_mid = 0;                // origin of the slope term
  // user: the model's parameter count (1..fit_max_params) and its kernels,
  // loaded on the current device.
  int n_params = 0;
  const UserKernels* user = nullptr;
};

// Number of parameters of a model (DESIGN.md order); 0 when the model is not
// one the GPU backend is compiled for.
int fit_n_params(const FitModelDesc& model);

// Which kernel runs the fits. Both run the same per-fit arithmetic
// (core::lm_*; the host tests show them bit-identical there); on the device
// they may differ by the rounding of nvcc's fused multiply-adds.
enum class FitKernel : int {
  automatic = 0,     // warp per fit from fit_warp_min_params parameters on
  thread_per_fit = 1,
  warp_per_fit = 2,
};

// From 4 peaks (13 parameters) on, the local memory that one thread's fit
// needs for its normal matrices no longer fits in L1 for the threads an SM
// runs (fit_kernels.cuh), so `automatic` gives each fit a warp.
inline constexpr int fit_warp_min_params = 13;

inline bool use_warp_per_fit(FitKernel kernel, int n_params) {
  return kernel == FitKernel::warp_per_fit ||
         (kernel == FitKernel::automatic && n_params >= fit_warp_min_params);
}

struct FitConfigDesc {
  core::Estimator estimator = core::Estimator::lse;
  int max_iter = 100;
  float tol = 1e-6f;  // relative chi-square change and relative step (ftol = xtol)
  FitKernel kernel = FitKernel::automatic;
  // Per parameter, first fit_n_params(model) entries used.
  bool fixed[fit_max_params] = {};
  float lo[fit_max_params];  // set by set_unbounded() or by the caller
  float hi[fit_max_params];

  FitConfigDesc() { set_unbounded(); }
  void set_unbounded() {
    for (int j = 0; j < fit_max_params; ++j) {
      lo[j] = -std::numeric_limits<float>::infinity();
      hi[j] = std::numeric_limits<float>::infinity();
    }
  }
};

// How the spectra lie in host memory.
enum class SpectrumLayout : int {
  pixel_major = 0,  // y[pix * n_points + i], as tessera::fit::FitBatch (transposed on the device)
  sweep_major = 1,  // y[i * n_pix + pix], as an HDF5 cube [n_sweep, ny, nx] (copied as is)
};

struct FitInputDesc {
  const float* x = nullptr;              // [n_points] sweep
  int n_points = 0;
  const float* y = nullptr;              // [n_pix x n_points] in `layout`
  const float* weights = nullptr;        // optional, same layout as y; LSE only (1/sigma^2)
  const std::uint8_t* mask = nullptr;    // optional [n_pix], nonzero = skip (state masked)
  const float* start = nullptr;          // [n_pix][n_params] start values
  std::int64_t n_pix = 0;
  SpectrumLayout layout = SpectrumLayout::pixel_major;
  // Largest number of spectra per chunk (each of the fit_streams streams holds
  // one chunk); 0 = the plan of fit_plan.hpp (half the free device memory, a
  // pinned staging budget, at least two chunks per stream for a large batch).
  // Results do not depend on it.
  std::int64_t max_chunk = 0;
};

// Caller-allocated host arrays; the layout of tessera::fit::FitResults.
struct FitOutputDesc {
  float* params = nullptr;             // [n_pix][n_params], NaN unless fitted
  float* sigma = nullptr;              // [n_pix][n_params]
  float* chi2 = nullptr;               // [n_pix]
  std::int32_t* state = nullptr;       // [n_pix] FitState values
  std::int32_t* iterations = nullptr;  // [n_pix]
  // Optional: set to the seconds the fit kernels ran (CUDA events, summed over
  // the chunks; overlapping streams may count a moment twice), so that a
  // benchmark can tell the kernels from the copies.
  double* kernel_seconds = nullptr;
};

// Fits every spectrum on the current CUDA device (the caller picks it with
// cudaSetDevice or the MPI rank binding), in chunks (fit_plan.hpp) on
// fit_streams streams of its own, whose copies (through pinned staging
// buffers) overlap the other streams' kernels. `stream` is a cudaStream_t, or
// nullptr for the default stream: the work starts after what is already queued
// there. The call returns when the results are in the host arrays. Throws std::invalid_argument for an unsupported model or
// inconsistent sizes and std::runtime_error for a CUDA error (no device, out
// of memory, ...), each with a one-line message.
void fit_batch_cuda(const FitModelDesc& model, const FitConfigDesc& config,
                    const FitInputDesc& input, const FitOutputDesc& output,
                    void* stream = nullptr);

// fit_batch_cuda with its device buffers, pinned staging and streams kept
// between calls: a caller that fits a cube chunk by chunk (tessera fit) pays
// for the allocations (pinning hundreds of MB of host memory takes a good
// fraction of a second) once, not per chunk. A call reuses them when they are
// large enough for its plan and allocates afresh otherwise. All calls must be
// made with the same current device; the buffers are freed by the destructor.
// Results are those of fit_batch_cuda.
class FitCudaSession {
 public:
  FitCudaSession();
  ~FitCudaSession();
  FitCudaSession(const FitCudaSession&) = delete;
  FitCudaSession& operator=(const FitCudaSession&) = delete;

  void fit(const FitModelDesc& model, const FitConfigDesc& config, const FitInputDesc& input,
           const FitOutputDesc& output, void* stream = nullptr);

  struct Impl;

 private:
  Impl* impl_;
};

}  // namespace tessera::cuda

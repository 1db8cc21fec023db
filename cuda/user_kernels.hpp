// Models of the user's own on the GPU: the CUDA translation unit that
// fit/user_model.hpp generates (the model struct the CPU engine runs, then
// TESSERA_CUDA_USER_KERNELS of user_kernels.cuh) compiled at run time by NVRTC,
// and its two kernels (one thread or one warp per fit, as the built-in
// models) loaded on the current device and launched by fit_batch_cuda for a
// FitModelDesc of kind user. Plain C++ here: no CUDA header.
//
// The compilation needs no device (tests compile every shipped model to PTX on
// machines without one); loading and launching do.
#pragma once

#include <string>

namespace tessera::cuda {

// NVRTC's version, e.g. "13.0".
std::string nvrtc_version();

// Compiles `source` with NVRTC for `arch`: "compute_XY" gives PTX (any later
// device JIT-compiles it), "sm_XY" a cubin for that device. Include paths:
// tessera's sources (core/, cuda/) and NVRTC's standard headers
// (cuda/nvrtc_std, the toolkit's libcu++). C++20 as nvcc compiles the
// built-in kernels, every function a device function (-default-device: the
// core's host templates such as make_lm_config run in the kernel). Throws std::invalid_argument
// with the first error line of the log (a compile error) and
// std::runtime_error when NVRTC itself fails.
std::string nvrtc_compile(const std::string& source, const std::string& arch);

// "sm_XY" of CUDA device `device` (cudaGetDeviceProperties); throws
// std::runtime_error when there is no such device.
std::string device_arch(int device);

// The kernels of one compiled model, loaded on the device current at
// construction (cudaLibraryLoadData); unloaded by the destructor, which must
// run with the same device current.
class UserKernels {
 public:
  // image: nvrtc_compile's output. Throws std::runtime_error (no device, an
  // image for another architecture, a missing kernel).
  explicit UserKernels(const std::string& image);
  ~UserKernels();
  UserKernels(const UserKernels&) = delete;
  UserKernels& operator=(const UserKernels&) = delete;

  // cudaKernel_t handles, as launch_user passes them to cudaLaunchKernel.
  const void* thread_kernel() const { return thread_; }
  const void* warp_kernel() const { return warp_; }

 private:
  void* library_ = nullptr;  // cudaLibrary_t
  const void* thread_ = nullptr;
  const void* warp_ = nullptr;
};

// The entry points that TESSERA_CUDA_USER_KERNELS defines.
inline constexpr const char* user_thread_kernel_name = "tessera_user_fit_thread";
inline constexpr const char* user_warp_kernel_name = "tessera_user_fit_warp";

}  // namespace tessera::cuda

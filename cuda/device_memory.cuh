// Error checks and grow-on-demand device arrays shared by the CUDA backends
// (internal to cuda/; needs the CUDA runtime headers).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace tessera::cuda {

// Throws std::runtime_error "CUDA <backend>: <what>: <the runtime's message>"
// unless err is cudaSuccess, after resetting the runtime's last-error slot.
inline void throw_on_error(cudaError_t err, const char* backend, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();
  throw std::runtime_error(std::string("CUDA ") + backend + ": " + what + ": " +
                           cudaGetErrorString(err));
}

// A device array that grows on demand and keeps its memory between calls.
template <class T> class DeviceArray {
 public:
  DeviceArray() = default;
  ~DeviceArray() { release(); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  // At least `count` elements; new memory is zeroed once (slots that a
  // fixed-batch transform covers beyond the pairs of a launch then hold finite
  // data, never uninitialised memory), and the device is synchronised so that
  // streams that do not wait for the legacy default stream see it zeroed.
  T* ensure(std::size_t count) {
    if (count > cap_) {
      release();
      throw_on_error(cudaMalloc(&ptr_, count * sizeof(T)), "device memory", "cudaMalloc");
      throw_on_error(cudaMemset(ptr_, 0, count * sizeof(T)), "device memory", "cudaMemset");
      throw_on_error(cudaDeviceSynchronize(), "device memory", "cudaMemset");
      cap_ = count;
    }
    return ptr_;
  }
  T* get() const { return ptr_; }
  std::size_t bytes() const { return cap_ * sizeof(T); }
  void release() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    cap_ = 0;
  }

 private:
  T* ptr_ = nullptr;
  std::size_t cap_ = 0;
};

}  // namespace tessera::cuda

#include "device_info.hpp"

#include <cuda_runtime.h>

#ifndef TESSERA_CUDA_ARCHITECTURES
#define TESSERA_CUDA_ARCHITECTURES "unknown"
#endif

namespace tessera::cuda {

DeviceQuery query_devices() {
  DeviceQuery q;
  cudaRuntimeGetVersion(&q.runtime_version);
  if (cudaDriverGetVersion(&q.driver_version) != cudaSuccess) q.driver_version = 0;

  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    // cudaErrorNoDevice, cudaErrorInsufficientDriver, ...: no usable device.
    // Without any driver the runtime reports an "insufficient" one: say so plainly.
    q.message = q.driver_version == 0 ? std::string("no CUDA driver installed")
                                      : std::string(cudaGetErrorString(err));
    cudaGetLastError();  // reset the runtime's last-error slot for later callers
    return q;
  }
  if (n == 0) {
    q.message = "no CUDA device visible";
    return q;
  }
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    DeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.major = prop.major;
    d.minor = prop.minor;
    d.total_memory = prop.totalGlobalMem;
    d.multiprocessors = prop.multiProcessorCount;
    q.devices.push_back(d);
  }
  return q;
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

const char* compiled_architectures() { return TESSERA_CUDA_ARCHITECTURES; }

std::string set_device(int index) {
  const cudaError_t e = cudaSetDevice(index);
  if (e == cudaSuccess) return {};
  cudaGetLastError();
  return std::string("cannot use CUDA device ") + std::to_string(index) + ": " + cudaGetErrorString(e);
}

}  // namespace tessera::cuda

// What the CUDA runtime sees on this machine, as plain host functions: no CUDA
// header is needed to call them. A machine without a GPU or without a driver is
// not an error here: it has zero devices, and `message` says why.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tessera::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0;  // compute capability major.minor
  int minor = 0;
  std::size_t total_memory = 0;  // bytes
  int multiprocessors = 0;
};

struct DeviceQuery {
  std::vector<DeviceInfo> devices;  // empty when none is visible
  std::string message;              // why there are none (CUDA's own words), else empty
  int runtime_version = 0;          // e.g. 13000 for 13.0
  int driver_version = 0;           // 0 when no driver is installed
};

// Devices visible to this process (after CUDA_VISIBLE_DEVICES). Never throws.
DeviceQuery query_devices();

// Number of visible devices; 0 on any error (no device, no or old driver).
int device_count();

// Makes `index` the current device of the calling thread; "" on success, else
// why not (one line).
std::string set_device(int index);

// The CUDA architectures this library was compiled for, e.g. "80;90".
const char* compiled_architectures();

}  // namespace tessera::cuda

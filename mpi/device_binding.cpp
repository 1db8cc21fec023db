#include "device_binding.hpp"

namespace tessera::mpi {

DeviceChoice choose_device(int local_rank, int n_visible, int device_override) {
  DeviceChoice c;
  if (n_visible <= 0) {
    c.why_not = "no CUDA device visible";
  } else if (device_override >= n_visible) {
    c.why_not = "--device " + std::to_string(device_override) + ": only " +
                std::to_string(n_visible) + " CUDA device(s) visible";
  } else if (device_override >= 0) {
    c.device = device_override;
  } else {
    c.device = (local_rank < 0 ? 0 : local_rank) % n_visible;
  }
  return c;
}

}  // namespace tessera::mpi

// Which GPU a rank binds: a pure function, so that `tessera fit` (which binds)
// and `tessera info` (which reports the binding of every rank) apply one rule,
// tested without MPI or a GPU (tests/mpi/test_device_binding.cpp).
//
// Rule (DESIGN.md): the rank's node-local rank, from
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), modulo the devices this process
// sees (CUDA numbers them after CUDA_VISIBLE_DEVICES); an explicit --device N
// overrides it, and must be one of the visible devices.
#pragma once

#include <string>

namespace tessera::mpi {

struct DeviceChoice {
  int device = -1;      // CUDA device index within the visible ones; -1: none
  std::string why_not;  // one line when device == -1, else empty
};

// local_rank >= 0; n_visible >= 0; device_override: --device N, or -1 for none.
[[nodiscard]] DeviceChoice choose_device(int local_rank, int n_visible, int device_override = -1);

}  // namespace tessera::mpi

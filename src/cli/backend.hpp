// The backend a command runs on, chosen the same on every rank (so that the
// output is computed one way). auto: the GPU when every rank sees one, else the
// CPU, said in one line by rank 0; cuda: the GPU, or a UsageError (exit 2) on
// every rank when any rank has none; cpu: the CPU. Rank r binds device (its
// rank on its node, MPI_Comm_split_type SHARED) modulo (the devices it sees,
// after CUDA_VISIBLE_DEVICES); --device overrides.
// The binding rule itself is mpi::choose_device (mpi/device_binding.hpp), which
// `tessera info` reports. Used by tessera fit and tessera xcorr.
#pragma once

#include <mpi.h>

#include <string>

#include "command.hpp"

namespace tessera::cli {

struct Backend {
  std::string name = "cpu";
  int device = -1;  // this rank's CUDA device when name == "cuda"
};

// requested: "auto", "cpu" or "cuda" (checked by the caller); device: --device
// or -1. Collective over comm.
Backend choose_backend(const std::string& requested, int device, bool quiet, const RunContext& ctx,
                       MPI_Comm comm);

}  // namespace tessera::cli

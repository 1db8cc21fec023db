#include "backend.hpp"

#include <cstdio>

#include "mpi/collectives.hpp"
#include "mpi/session.hpp"
#include "mpi/device_binding.hpp"
#if defined(TESSERA_HAVE_CUDA)
#include "cuda/device_info.hpp"
#endif

namespace tessera::cli {

Backend choose_backend(const std::string& requested, int device_option, bool quiet,
                       const RunContext& ctx, MPI_Comm comm) {
  if (requested == "cpu") return {};
  std::string why_not;
  int device = -1;
#if defined(TESSERA_HAVE_CUDA)
  const auto q = cuda::query_devices();
  const int n = int(q.devices.size());
  if (n == 0) {
    why_not = "no CUDA device visible" + (q.message.empty() ? "" : " (" + q.message + ")");
  } else {
    const mpi::DeviceChoice choice = mpi::choose_device(mpi::node_place(comm).local_rank, n, device_option);
    device = choice.device;
    why_not = device < 0 ? choice.why_not : cuda::set_device(device);
  }
#else
  (void)device_option;
  why_not = "this build has no CUDA backend (nvcc was not found when it was configured)";
#endif
  const std::string agreed = mpi::agree_error(comm, why_not);
  if (agreed.empty()) return {"cuda", device};
  if (requested == "cuda") throw UsageError("--backend cuda: " + agreed);
  if (ctx.is_root() && !quiet) std::fprintf(stderr, "tessera: using the CPU: %s\n", agreed.c_str());
  return {};
}

}  // namespace tessera::cli

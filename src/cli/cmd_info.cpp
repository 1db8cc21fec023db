// `tessera info`: what this build of tessera can use on this machine: compiled
// backends, SIMD level, CUDA devices, MPI library and ranks, HDF5, and the GPU
// every rank would bind (gathered to rank 0, printed once).
#include <hdf5.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "command.hpp"
#include "mpi/collectives.hpp"
#include "mpi/device_binding.hpp"
#include "mpi/session.hpp"

#ifdef TESSERA_HAVE_CUDA
#include "cuda/device_info.hpp"
#endif

namespace tessera::cli {
namespace {

// The widest vector instruction set the compiler was allowed to use.
const char* simd_compiled() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__)
  return "AVX2";
#elif defined(__AVX__)
  return "AVX";
#elif defined(__SSE2__)
  return "SSE2";
#elif defined(__ARM_NEON)
  return "NEON";
#else
  return "none (scalar)";
#endif
}

// The widest one this CPU offers (x86 only).
const char* simd_this_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "AVX-512";
  if (__builtin_cpu_supports("avx2")) return "AVX2";
  if (__builtin_cpu_supports("avx")) return "AVX";
  if (__builtin_cpu_supports("sse2")) return "SSE2";
  return "none";
#else
  return nullptr;
#endif
}

std::string hdf5_library() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  std::ostringstream s;
  s << major << '.' << minor << '.' << release;
#ifdef H5_HAVE_PARALLEL
  s << ", parallel";
#else
  s << ", serial";
#endif
  return s.str();
}

#ifdef TESSERA_HAVE_CUDA
std::string version_number(int v) {  // CUDA encodes 12.4 as 12040
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}
#endif

void print_cuda(std::ostream& out) {
#ifdef TESSERA_HAVE_CUDA
  const cuda::DeviceQuery q = cuda::query_devices();
  out << "cuda runtime     : " << version_number(q.runtime_version) << ", driver "
      << (q.driver_version > 0 ? version_number(q.driver_version) : std::string("none")) << '\n';
  if (q.devices.empty()) {
    out << "cuda devices     : none (" << q.message << ")\n";
    return;
  }
  out << "cuda devices     : " << q.devices.size() << '\n';
  for (const cuda::DeviceInfo& d : q.devices) {
    char mem[32];
    std::snprintf(mem, sizeof mem, "%.1f GiB", double(d.total_memory) / (1024.0 * 1024 * 1024));
    out << "  [" << d.index << "] " << d.name << ", compute capability " << d.major << '.'
        << d.minor << ", " << mem << ", " << d.multiprocessors << " SMs\n";
  }
#else
  out << "cuda devices     : none (built without CUDA)\n";
#endif
}

// This rank's binding, one line: where it runs, its node-local rank, what it
// sees, and the device `tessera fit --device` (same override) would bind, by
// the rule of mpi/device_binding.hpp.
std::string binding_line(const RunContext& ctx, int device_override) {
  const mpi::NodePlace place = mpi::node_place(MPI_COMM_WORLD);
  const int local = place.local_rank;
  std::ostringstream s;
  s << "  rank " << ctx.rank << " on " << place.host << ": local rank " << local << " of "
    << place.local_size << ", CUDA_VISIBLE_DEVICES";
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) s << '=' << v;
  else s << " unset";
#ifdef TESSERA_HAVE_CUDA
  const cuda::DeviceQuery q = cuda::query_devices();
  const int n = int(q.devices.size());
  s << ", " << n << " device(s) visible -> ";
  const mpi::DeviceChoice c = mpi::choose_device(local, n, device_override);
  if (c.device >= 0) {
    s << "cuda device " << c.device << " (" << q.devices[std::size_t(c.device)].name << ')';
  } else {
    s << "cpu (" << c.why_not;
    if (n == 0 && !q.message.empty()) s << ": " << q.message;
    s << ')';
  }
#else
  (void)device_override;
  s << " -> cpu (built without CUDA)";
#endif
  return s.str();
}

int run_info(const RunContext& ctx, int device_override) {
  // Collective: every rank reports its binding before rank 0 prints.
  const std::vector<std::string> bindings = mpi::gather_to_root(MPI_COMM_WORLD, binding_line(ctx, device_override));
  if (!ctx.is_root()) return 0;
  std::ostream& out = std::cout;
  out << version_line() << '\n';
#ifdef TESSERA_HAVE_CUDA
  out << "backends         : cpu, cuda (architectures " << cuda::compiled_architectures()
      << ")\n";
#else
  out << "backends         : cpu (cuda: not compiled)\n";
#endif
  out << "simd compiled    : " << simd_compiled();
  if (const char* cpu = simd_this_cpu()) out << " (this CPU: " << cpu << ')';
  out << '\n';
  out << "cpu threads      : " << std::thread::hardware_concurrency() << '\n';
  print_cuda(out);
  out << "mpi library      : " << mpi::library_version() << '\n';
  out << "mpi ranks        : " << ctx.size << '\n';
  out << "hdf5             : " << hdf5_library() << '\n';
  out << "gpu binding      : node-local rank modulo visible devices"
      << (device_override >= 0 ? ", --device " + std::to_string(device_override) : std::string())
      << '\n';
  for (const std::string& line : bindings) out << line << '\n';
  return 0;
}

}  // namespace

Command add_info_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "info",
      "Print compiled backends, SIMD level, CUDA devices, MPI library, HDF5 and each rank's GPU");
  auto device = std::make_shared<int>(-1);
  sub->add_option("--device", *device,
                  "Show the binding `tessera fit --device N` would use (default: local rank "
                  "modulo the visible devices)")
      ->check(CLI::NonNegativeNumber);
  return {sub, [device](const RunContext& ctx) { return run_info(ctx, *device); }};
}

}  // namespace tessera::cli

// `tessera info`: what this build of tessera can use on this machine: compiled
// backends, SIMD level, CUDA devices, MPI library and ranks, HDF5.
#include <hdf5.h>
#include <mpi.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "command.hpp"

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

std::string mpi_library() {
  char buf[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(buf, &len);
  std::string s(buf, buf + len);
  s = s.substr(0, s.find_first_of("\r\n"));  // the first line names library and version
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  int major = 0, minor = 0;
  MPI_Get_version(&major, &minor);
  return s + " (MPI " + std::to_string(major) + "." + std::to_string(minor) + ")";
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

int run_info(const RunContext& ctx) {
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
  out << "mpi library      : " << mpi_library() << '\n';
  out << "mpi ranks        : " << ctx.size << '\n';
  out << "hdf5             : " << hdf5_library() << '\n';
  return 0;
}

}  // namespace

Command add_info_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "info", "Print compiled backends, SIMD level, CUDA devices, MPI library and HDF5");
  return {sub, run_info};
}

}  // namespace tessera::cli

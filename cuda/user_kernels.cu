// NVRTC compilation, loading and launch of the kernels of a model of the
// user's own (user_kernels.hpp).
#include "user_kernels.hpp"

#include <cuda_runtime.h>
#include <nvrtc.h>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fit_kernels.cuh"

#ifndef TESSERA_NVRTC_INCLUDES
#error "TESSERA_NVRTC_INCLUDES: the include directories of the run-time CUDA compiler, '|'-separated"
#endif

namespace tessera::cuda {
namespace {

void check_nvrtc(nvrtcResult r, const char* what) {
  if (r != NVRTC_SUCCESS) throw std::runtime_error(std::string("NVRTC ") + what + ": " + nvrtcGetErrorString(r));
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

struct Program {
  nvrtcProgram p = nullptr;
  ~Program() {
    if (p) nvrtcDestroyProgram(&p);
  }
};

// The first line of the log that says "error", else its first line.
std::string first_error(const std::string& log) {
  std::istringstream in(log);
  std::string line, first;
  while (std::getline(in, line)) {
    if (first.empty() && !line.empty()) first = line;
    if (line.find("error") != std::string::npos) return line;
  }
  return first.empty() ? "the CUDA compiler failed without a message" : first;
}

}  // namespace

std::string nvrtc_version() {
  int major = 0, minor = 0;
  check_nvrtc(nvrtcVersion(&major, &minor), "version");
  return std::to_string(major) + "." + std::to_string(minor);
}

std::string nvrtc_compile(const std::string& source, const std::string& arch) {
  Program prog;
  check_nvrtc(nvrtcCreateProgram(&prog.p, source.c_str(), "user_model.cu", 0, nullptr, nullptr), "create");
  std::vector<std::string> opts = {"--std=c++20", "-default-device",
                                   "--gpu-architecture=" + arch};
  std::istringstream dirs(TESSERA_NVRTC_INCLUDES);
  for (std::string d; std::getline(dirs, d, '|');)
    if (!d.empty()) opts.push_back("-I" + d);
  std::vector<const char*> argv;
  for (const auto& o : opts) argv.push_back(o.c_str());
  const nvrtcResult r = nvrtcCompileProgram(prog.p, int(argv.size()), argv.data());
  if (r == NVRTC_ERROR_COMPILATION) {
    std::size_t n = 0;
    check_nvrtc(nvrtcGetProgramLogSize(prog.p, &n), "log");
    std::string log(n, '\0');
    check_nvrtc(nvrtcGetProgramLog(prog.p, log.data()), "log");
    throw std::invalid_argument("the CUDA compiler (NVRTC) rejected the model: " + first_error(log));
  }
  check_nvrtc(r, "compile");
  std::string image;
  std::size_t n = 0;
  if (arch.rfind("sm_", 0) == 0) {
    check_nvrtc(nvrtcGetCUBINSize(prog.p, &n), "cubin");
    image.resize(n);
    check_nvrtc(nvrtcGetCUBIN(prog.p, image.data()), "cubin");
  } else {
    check_nvrtc(nvrtcGetPTXSize(prog.p, &n), "PTX");  // n counts the terminating NUL
    image.resize(n);
    check_nvrtc(nvrtcGetPTX(prog.p, image.data()), "PTX");
  }
  return image;
}

std::string device_arch(int device) {
  cudaDeviceProp p{};
  check_cuda(cudaGetDeviceProperties(&p, device), "CUDA device properties");
  return "sm_" + std::to_string(p.major) + std::to_string(p.minor);
}

UserKernels::UserKernels(const std::string& image) {
  cudaLibrary_t lib = nullptr;
  check_cuda(cudaLibraryLoadData(&lib, image.data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
             "loading the model's CUDA kernels");
  library_ = lib;
  cudaKernel_t k = nullptr;
  try {
    check_cuda(cudaLibraryGetKernel(&k, lib, user_thread_kernel_name), "the model's thread kernel");
    thread_ = reinterpret_cast<const void*>(k);
    check_cuda(cudaLibraryGetKernel(&k, lib, user_warp_kernel_name), "the model's warp kernel");
    warp_ = reinterpret_cast<const void*>(k);
  } catch (...) {
    cudaLibraryUnload(lib);
    throw;
  }
}

UserKernels::~UserKernels() {
  if (library_) cudaLibraryUnload(static_cast<cudaLibrary_t>(library_));
}

bool launch_user(const FitModelDesc& desc, const FitConfigDesc& config, const SpectraChunk& chunk,
                 cudaStream_t stream) {
  if (!desc.user) return false;
  // The kernels take the configuration as it is and build the LM settings of
  // their P themselves (make_lm_config), so the host needs no template on P.
  FitConfigDesc c = config;
  SpectraChunk k = chunk;
  void* args[] = {&c, &k};
  cudaError_t e;
  if (use_warp_per_fit(config.kernel, desc.n_params)) {
    const auto blocks = unsigned((std::int64_t(chunk.n) + fit_warps_per_block - 1) / fit_warps_per_block);
    e = cudaLaunchKernel(desc.user->warp_kernel(), dim3(blocks), dim3(fit_warps_per_block * warp_lanes), args, 0,
                         stream);
  } else {
    const auto blocks = unsigned((std::int64_t(chunk.n) + fit_block_size - 1) / fit_block_size);
    e = cudaLaunchKernel(desc.user->thread_kernel(), dim3(blocks), dim3(fit_block_size), args, 0, stream);
  }
  check_cuda(e, "launching the model's kernel");
  return true;
}

}  // namespace tessera::cuda

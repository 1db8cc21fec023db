// MaskedCorrelatorCuda: two uploads, two D2Z transforms, the spectra product
// (the CPU's complex arithmetic, --fmad=false as the rest of the xcorr
// backend), one Z2D and the download. Buffers and plans are kept from one call
// to the next (one size at a time).
#include <cufft.h>

#include <stdexcept>
#include <string>

#include "device_memory.cuh"
#include "xcorr_masked_cuda.hpp"

namespace tessera::cuda {
namespace {

void check(cudaError_t err, const char* what) { throw_on_error(err, "masked xcorr", what); }
void check(cufftResult r, const char* what) {
  if (r == CUFFT_SUCCESS) return;
  throw std::runtime_error(std::string("CUDA masked xcorr: ") + what + ": cuFFT error " + std::to_string(int(r)));
}

// c[i] = a[i] * b[i] * scale, the order of operations of the CPU's product
// (src/xcorr/masked.cpp): re = br*ar - bi*ai, im = br*ai + bi*ar, then scaled.
__global__ void product(const double2* a, const double2* b, double2* c, long long n, double scale) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const double2 x = a[i], y = b[i];
  const double re = y.x * x.x - y.y * x.y;
  const double im = y.x * x.y + y.y * x.x;
  c[i] = make_double2(re * scale, im * scale);
}

}  // namespace

struct MaskedCorrelatorCuda::Impl {
  int py = 0, px = 0;
  cufftHandle d2z = 0, z2d = 0;
  bool have_plans = false;
  DeviceArray<double> a, b;
  DeviceArray<double2> sa, sb;
  cudaStream_t stream = nullptr;

  void destroy_plans() {
    if (!have_plans) return;
    cufftDestroy(d2z);
    cufftDestroy(z2d);
    have_plans = false;
  }
  void ensure(int rows, int cols) {
    if (have_plans && rows == py && cols == px) return;
    destroy_plans();
    check(cufftPlan2d(&d2z, rows, cols, CUFFT_D2Z), "cufftPlan2d D2Z");
    check(cufftPlan2d(&z2d, rows, cols, CUFFT_Z2D), "cufftPlan2d Z2D");
    have_plans = true;
    check(cufftSetStream(d2z, stream), "cufftSetStream");
    check(cufftSetStream(z2d, stream), "cufftSetStream");
    py = rows;
    px = cols;
  }
};

MaskedCorrelatorCuda::MaskedCorrelatorCuda() : impl_(std::make_unique<Impl>()) {
  check(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
}

MaskedCorrelatorCuda::~MaskedCorrelatorCuda() {
  impl_->destroy_plans();
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

void MaskedCorrelatorCuda::correlate(const double* a, const double* b, int py, int px, double* out) {
  Impl& m = *impl_;
  m.ensure(py, px);
  const std::size_t nr = std::size_t(py) * std::size_t(px), nc = std::size_t(py) * std::size_t(px / 2 + 1);
  double *da = m.a.ensure(nr), *db = m.b.ensure(nr);
  double2 *sa = m.sa.ensure(nc), *sb = m.sb.ensure(nc);
  check(cudaMemcpyAsync(da, a, nr * sizeof(double), cudaMemcpyHostToDevice, m.stream), "upload");
  check(cudaMemcpyAsync(db, b, nr * sizeof(double), cudaMemcpyHostToDevice, m.stream), "upload");
  check(cufftExecD2Z(m.d2z, da, reinterpret_cast<cufftDoubleComplex*>(sa)), "cufftExecD2Z");
  check(cufftExecD2Z(m.d2z, db, reinterpret_cast<cufftDoubleComplex*>(sb)), "cufftExecD2Z");
  const int threads = 256;
  const auto blocks = unsigned((nc + threads - 1) / threads);
  product<<<blocks, threads, 0, m.stream>>>(sa, sb, sa, (long long)nc, 1.0 / double(nr));
  check(cudaGetLastError(), "product kernel");
  check(cufftExecZ2D(m.z2d, reinterpret_cast<cufftDoubleComplex*>(sa), da), "cufftExecZ2D");
  check(cudaMemcpyAsync(out, da, nr * sizeof(double), cudaMemcpyDeviceToHost, m.stream), "download");
  check(cudaStreamSynchronize(m.stream), "masked correlation");
}

}  // namespace tessera::cuda

// fit_batch_cuda: device memory, chunking, copies and the kernel launch.
#include <algorithm>
#include <climits>
#include <cstddef>
#include <stdexcept>
#include <string>

#include "fit_cuda.hpp"
#include "fit_kernels.cuh"

namespace tessera::cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // reset the runtime's last-error slot
  throw std::runtime_error(std::string("CUDA fit: ") + what + ": " + cudaGetErrorString(err));
}

// Device memory owned for the duration of one call.
template <class T> class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) {
    if (count > 0) check(cudaMalloc(&ptr_, count * sizeof(T)), "cudaMalloc");
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
};

template <class T>
void to_device(T* dst, const T* src, std::size_t count, cudaStream_t s) {
  check(cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyHostToDevice, s), "copy to device");
}
template <class T>
void to_host(T* dst, const T* src, std::size_t count, cudaStream_t s) {
  check(cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyDeviceToHost, s), "copy to host");
}

// Spectra [c0, c0 + n) of `host` into the sweep-major device array dst
// [n_points][n], through `staging` ([n][n_points]) when the host is pixel-major.
void spectra_to_device(const float* host, const FitInputDesc& in, std::int64_t c0, int n,
                       float* dst, float* staging, cudaStream_t s) {
  const std::size_t np = std::size_t(in.n_points);
  if (in.layout == SpectrumLayout::pixel_major) {
    to_device(staging, host + std::size_t(c0) * np, std::size_t(n) * np, s);
    transpose_to_sweep_major(staging, dst, n, in.n_points, s);
    check(cudaGetLastError(), "transpose kernel launch");
  } else {
    check(cudaMemcpy2DAsync(dst, std::size_t(n) * sizeof(float), host + c0,
                            std::size_t(in.n_pix) * sizeof(float), std::size_t(n) * sizeof(float),
                            np, cudaMemcpyHostToDevice, s),
          "copy to device");
  }
}

void validate(const FitModelDesc& model, const FitConfigDesc& config, const FitInputDesc& in,
              const FitOutputDesc& out) {
  if (fit_n_params(model) == 0)
    throw std::invalid_argument("CUDA fit: no kernel for this model (peak models take 1 to " +
                                std::to_string(fit_max_peaks) + " peaks)");
  if (in.n_pix < 0) throw std::invalid_argument("CUDA fit: negative number of spectra");
  if (in.n_pix == 0) return;
  if (in.n_points < 1) throw std::invalid_argument("CUDA fit: the sweep is empty");
  if (!in.x || !in.y || !in.start)
    throw std::invalid_argument("CUDA fit: missing sweep, spectra or start values");
  if (!out.params || !out.sigma || !out.chi2 || !out.state || !out.iterations)
    throw std::invalid_argument("CUDA fit: missing output array");
  if (config.max_iter < 1) throw std::invalid_argument("CUDA fit: max_iter must be at least 1");
  if (!(config.tol > 0 && config.tol < 1))
    throw std::invalid_argument("CUDA fit: tol must be in (0, 1)");
  if (in.weights && config.estimator == core::Estimator::mle)
    throw std::invalid_argument("CUDA fit: weights apply to least squares only, not to MLE");
  for (int i = 0; i < in.n_points; ++i)
    if (!(in.x[i] - in.x[i] == 0.0f))
      throw std::invalid_argument("CUDA fit: the sweep holds a non-finite value");
  const int P = fit_n_params(model);
  int n_free = 0;
  for (int j = 0; j < P; ++j) n_free += config.fixed[j] ? 0 : 1;
  if (n_free == 0) throw std::invalid_argument("CUDA fit: every parameter is fixed");
  if (in.n_points < n_free)
    throw std::invalid_argument("CUDA fit: fewer sweep points than free parameters");
}

}  // namespace

int fit_n_params(const FitModelDesc& model) {
  switch (model.kind) {
    case FitModelKind::lorentzian:
    case FitModelKind::gaussian:
      if (model.n_peaks < 1 || model.n_peaks > fit_max_peaks) return 0;
      return (model.linear_background ? 2 : 1) + 3 * model.n_peaks;
    case FitModelKind::stretched_exp:
      return 4;
    case FitModelKind::damped_cosine:
      return 5;
  }
  return 0;
}

void fit_batch_cuda(const FitModelDesc& model, const FitConfigDesc& config,
                    const FitInputDesc& in, const FitOutputDesc& out, void* stream_handle) {
  validate(model, config, in, out);
  if (in.n_pix == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  const int P = fit_n_params(model);
  const std::size_t np = std::size_t(in.n_points);

  // Chunk size: half of the free device memory, and few enough spectra that
  // the kernel's int offsets (sweep point x chunk) cannot overflow.
  std::size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  const bool staged = in.layout == SpectrumLayout::pixel_major;
  const std::size_t per_spectrum =
      np * sizeof(float) * (1 + (in.weights ? 1 : 0) + (staged ? 1 : 0)) +
      std::size_t(P) * sizeof(float) * 3 + sizeof(float) + 2 * sizeof(std::int32_t) + 1;
  std::int64_t chunk = std::int64_t(free_bytes / 2 / per_spectrum);
  chunk = std::min<std::int64_t>(chunk, INT_MAX / std::int64_t(np + P));
  if (in.max_chunk > 0) chunk = std::min(chunk, in.max_chunk);
  chunk = std::min(chunk, in.n_pix);
  if (chunk < 1)
    throw std::runtime_error("CUDA fit: not enough free device memory for one spectrum");

  const std::size_t cn = std::size_t(chunk);
  DeviceBuffer<float> d_x(np), d_y(np * cn), d_w(in.weights ? np * cn : 0),
      d_staging(staged ? np * cn : 0), d_start(cn * P), d_params(cn * P), d_sigma(cn * P),
      d_chi2(cn);
  DeviceBuffer<std::int32_t> d_state(cn), d_iter(cn);
  DeviceBuffer<std::uint8_t> d_mask(in.mask ? cn : 0);
  to_device(d_x.get(), in.x, np, stream);

  for (std::int64_t c0 = 0; c0 < in.n_pix; c0 += chunk) {
    const int n = int(std::min(chunk, in.n_pix - c0));
    spectra_to_device(in.y, in, c0, n, d_y.get(), d_staging.get(), stream);
    if (in.weights) spectra_to_device(in.weights, in, c0, n, d_w.get(), d_staging.get(), stream);
    if (in.mask) to_device(d_mask.get(), in.mask + c0, std::size_t(n), stream);
    to_device(d_start.get(), in.start + std::size_t(c0) * P, std::size_t(n) * P, stream);

    SpectraChunk c{};
    c.x = d_x.get();
    c.n_points = in.n_points;
    c.n = n;
    c.y = d_y.get();
    c.w = in.weights ? d_w.get() : nullptr;
    c.mask = in.mask ? d_mask.get() : nullptr;
    c.start = d_start.get();
    c.params = d_params.get();
    c.sigma = d_sigma.get();
    c.chi2 = d_chi2.get();
    c.state = d_state.get();
    c.iterations = d_iter.get();
    if (!launch_fit(model, config, c, stream))
      throw std::invalid_argument("CUDA fit: no kernel for this model");
    check(cudaGetLastError(), "fit kernel launch");

    to_host(out.params + std::size_t(c0) * P, d_params.get(), std::size_t(n) * P, stream);
    to_host(out.sigma + std::size_t(c0) * P, d_sigma.get(), std::size_t(n) * P, stream);
    to_host(out.chi2 + c0, d_chi2.get(), std::size_t(n), stream);
    to_host(out.state + c0, d_state.get(), std::size_t(n), stream);
    to_host(out.iterations + c0, d_iter.get(), std::size_t(n), stream);
    // The staging and input buffers are reused by the next chunk.
    check(cudaStreamSynchronize(stream), "fit kernel");
  }
}

}  // namespace tessera::cuda

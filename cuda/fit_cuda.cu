// fit_batch_cuda: device memory, chunking (fit_plan.hpp), pinned staging,
// streams and the kernel launches.
//
// The pipeline: fit_streams slots, each with a stream, one chunk's device
// buffers and one chunk's pinned host buffers. Chunk k goes to slot k % slots:
// the host waits for that slot's previous chunk, unpacks its results from the
// pinned buffers into the caller's arrays, packs chunk k's inputs into the
// pinned buffers, and queues copy in / transpose / kernel / copy out on the
// slot's stream, then moves to the next slot at once. So while one slot's
// kernel runs, the other slot's copies (and the host's packing) proceed; the
// copies are asynchronous because they come from pinned memory. A
// FitCudaSession keeps the slots (and the sweep's device copy) between calls and
// reuses them while they are large enough; fit_batch_cuda is one call of a
// session of its own.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "device_memory.cuh"
#include "fit_cuda.hpp"
#include "fit_kernels.cuh"
#include "fit_plan.hpp"
#include "core/models/decays.hpp"
#include "core/peak_layout.hpp"

namespace tessera::cuda {
namespace {

void check(cudaError_t err, const char* what) { throw_on_error(err, "fit", what); }

// Device memory owned for the duration of one call.
template <class T> class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) {
    if (count > 0) check(cudaMalloc(&ptr_, count * sizeof(T)), "cudaMalloc");
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_) { o.ptr_ = nullptr; }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
};

// Page-locked host memory, so that copies to and from it are asynchronous.
template <class T> class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t count) {
    if (count > 0)
      check(cudaHostAlloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T), cudaHostAllocDefault),
            "cudaHostAlloc (pinned staging)");
  }
  ~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(o.ptr_) { o.ptr_ = nullptr; }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
};

class Stream {
 public:
  Stream() { check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreate"); }
  ~Stream() {
    if (s_) {
      cudaStreamSynchronize(s_);  // no buffer is freed under a running copy or kernel
      cudaStreamDestroy(s_);
    }
  }
  Stream(Stream&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  explicit Event(bool timing = false) {
    check(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming),
          "cudaEventCreate");
  }
  Event(Event&& o) noexcept : e_(o.e_) { o.e_ = nullptr; }
  ~Event() {
    if (e_) cudaEventDestroy(e_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

template <class T>
void to_device(T* dst, const T* src, std::size_t count, cudaStream_t s) {
  check(cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyHostToDevice, s), "copy to device");
}
template <class T>
void to_host(T* dst, const T* src, std::size_t count, cudaStream_t s) {
  check(cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyDeviceToHost, s), "copy to host");
}

// One stream's buffers: a chunk of inputs and results, on the device and
// pinned on the host. Declared members in this order so that the stream (last)
// is synchronised before any buffer is freed.
struct Slot {
  // What the buffers were sized for (a later call of a session reuses them
  // when its chunk, sweep and model fit).
  struct Shape {
    std::size_t cn, np, P;
    bool weights, mask, staged;
    bool holds(const Shape& o) const {
      return cn >= o.cn && np == o.np && P == o.P && weights == o.weights && mask == o.mask &&
             staged == o.staged;
    }
    // Device bytes of the slot (fit_plan.hpp's count per spectrum).
    std::size_t device_bytes() const {
      FitChunkRequest r;
      r.n_points = int(np);
      r.n_params = int(P);
      r.weights = weights;
      r.mask = mask;
      r.pixel_major = staged;
      return cn * fit_device_bytes_per_spectrum(r);
    }
  } shape;
  // Pinned host side.
  PinnedBuffer<float> h_y, h_w, h_start, h_params, h_sigma, h_chi2;
  PinnedBuffer<std::int32_t> h_state, h_iter;
  PinnedBuffer<std::uint8_t> h_mask;
  // Device side.
  DeviceBuffer<float> d_y, d_w, d_staging, d_start, d_params, d_sigma, d_chi2;
  DeviceBuffer<std::int32_t> d_state, d_iter;
  DeviceBuffer<std::uint8_t> d_mask;
  Event kernel_start{true}, kernel_stop{true};  // timing of the chunk's fit kernel
  Stream stream;
  // The chunk whose results are in flight (-1: none).
  std::int64_t pending = -1;

  explicit Slot(const Shape& s)
      : shape(s),
        h_y(s.cn * s.np), h_w(s.weights ? s.cn * s.np : 0), h_start(s.cn * s.P),
        h_params(s.cn * s.P), h_sigma(s.cn * s.P), h_chi2(s.cn), h_state(s.cn), h_iter(s.cn),
        h_mask(s.mask ? s.cn : 0), d_y(s.cn * s.np), d_w(s.weights ? s.cn * s.np : 0),
        d_staging(s.staged ? s.cn * s.np : 0), d_start(s.cn * s.P), d_params(s.cn * s.P),
        d_sigma(s.cn * s.P), d_chi2(s.cn), d_state(s.cn), d_iter(s.cn), d_mask(s.mask ? s.cn : 0) {}
};

// Spectra [c0, c0 + n) of `host` (layout in.layout) into the pinned buffer
// `pinned`: pixel-major stays pixel-major ([n][n_points], transposed on the
// device), sweep-major is gathered to [n_points][n], as the kernel reads it.
void pack_spectra(const float* host, const FitInputDesc& in, std::int64_t c0, std::int64_t n,
                  float* pinned) {
  const std::size_t np = std::size_t(in.n_points);
  if (in.layout == SpectrumLayout::pixel_major) {
    std::memcpy(pinned, host + std::size_t(c0) * np, std::size_t(n) * np * sizeof(float));
  } else {
    for (std::size_t i = 0; i < np; ++i)
      std::memcpy(pinned + i * std::size_t(n), host + i * std::size_t(in.n_pix) + std::size_t(c0),
                  std::size_t(n) * sizeof(float));
  }
}

// The pinned spectra of a chunk into the sweep-major device array `dst`.
void spectra_to_device(const float* pinned, const FitInputDesc& in, int n, float* dst,
                       float* staging, cudaStream_t s) {
  const std::size_t count = std::size_t(n) * std::size_t(in.n_points);
  if (in.layout == SpectrumLayout::pixel_major) {
    to_device(staging, pinned, count, s);
    transpose_to_sweep_major(staging, dst, n, in.n_points, s);
    check(cudaGetLastError(), "transpose kernel launch");
  } else {
    to_device(dst, pinned, count, s);
  }
}

void validate(const FitModelDesc& model, const FitConfigDesc& config, const FitInputDesc& in,
              const FitOutputDesc& out) {
  if (fit_n_params(model) == 0)
    throw std::invalid_argument("CUDA fit: no kernel for this model (peak models take 1 to " +
                                std::to_string(fit_max_peaks) + " peaks, models of your own up to " +
                                std::to_string(fit_max_params) + " parameters)");
  if (in.n_pix < 0) throw std::invalid_argument("CUDA fit: negative number of spectra");
  if (in.n_pix == 0) return;
  if (in.n_points < 1) throw std::invalid_argument("CUDA fit: the sweep is empty");
  if (in.n_points > fit_max_points)
    throw std::invalid_argument("CUDA fit: more than " + std::to_string(fit_max_points) +
                                " sweep points");
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

// Fits the device runs at once, at most: SMs x resident threads per SM.
std::int64_t resident_threads() {
  int dev = 0, sms = 0, per_sm = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "device attributes");
  check(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, dev),
        "device attributes");
  return std::int64_t(sms) * per_sm;
}

}  // namespace

int fit_n_params(const FitModelDesc& model) {
  switch (model.kind) {
    case FitModelKind::lorentzian:
    case FitModelKind::gaussian:
      if (model.n_peaks < 1 || model.n_peaks > fit_max_peaks) return 0;
      return core::PeakLayout::n_params(model.n_peaks, model.linear_background);
    case FitModelKind::stretched_exp:
      return core::StretchedExp::n_params;
    case FitModelKind::damped_cosine:
      return core::DampedCosine::n_params;
    case FitModelKind::user:
      return model.user && model.n_params >= 1 && model.n_params <= fit_max_params ? model.n_params : 0;
  }
  return 0;
}

// What a session keeps between calls: the sweep's device copy and the slots.
struct FitCudaSession::Impl {
  DeviceArray<float> d_x;
  std::vector<Slot> slots;

  // Device bytes of the slots, counted as free by the next call's plan.
  std::size_t held_bytes() const {
    std::size_t b = 0;
    for (const Slot& sl : slots) b += sl.shape.device_bytes();
    return b;
  }

  void fit(const FitModelDesc& model, const FitConfigDesc& config, const FitInputDesc& in,
           const FitOutputDesc& out, void* stream_handle);
};

FitCudaSession::FitCudaSession() : impl_(new Impl) {}
FitCudaSession::~FitCudaSession() { delete impl_; }

void FitCudaSession::fit(const FitModelDesc& model, const FitConfigDesc& config,
                         const FitInputDesc& input, const FitOutputDesc& output, void* stream) {
  impl_->fit(model, config, input, output, stream);
}

void fit_batch_cuda(const FitModelDesc& model, const FitConfigDesc& config,
                    const FitInputDesc& in, const FitOutputDesc& out, void* stream_handle) {
  FitCudaSession session;
  session.fit(model, config, in, out, stream_handle);
}

void FitCudaSession::Impl::fit(const FitModelDesc& model, const FitConfigDesc& config,
                               const FitInputDesc& in, const FitOutputDesc& out,
                               void* stream_handle) {
  validate(model, config, in, out);
  if (out.kernel_seconds) *out.kernel_seconds = 0;
  if (in.n_pix == 0) return;
  const auto caller = static_cast<cudaStream_t>(stream_handle);
  const int P = fit_n_params(model);
  const std::size_t np = std::size_t(in.n_points);

  std::size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  FitChunkRequest req;
  req.n_pix = in.n_pix;
  req.n_points = in.n_points;
  req.n_params = P;
  req.weights = in.weights != nullptr;
  req.mask = in.mask != nullptr;
  req.pixel_major = in.layout == SpectrumLayout::pixel_major;
  // The slots this session holds are free for this call's plan.
  req.free_device_bytes = free_bytes + held_bytes();
  req.max_chunk = in.max_chunk;
  req.min_chunk = resident_threads();
  const FitChunkPlan plan = plan_fit_chunks(req);
  const std::size_t cn = std::size_t(plan.chunk);

  // The slots of an earlier call serve when they hold this plan's chunks;
  // otherwise they are freed first (their streams are idle: every call drains
  // them before it returns).
  const Slot::Shape need{cn, np, std::size_t(P), req.weights, req.mask, req.pixel_major};
  bool reuse = slots.size() == std::size_t(plan.slots);
  for (const Slot& sl : slots) reuse = reuse && sl.shape.holds(need);
  if (!reuse) {
    slots.clear();
    slots.reserve(std::size_t(plan.slots));
    for (int s = 0; s < plan.slots; ++s) slots.emplace_back(need);
  } else {
    // An earlier call that failed may have left work or a pending chunk.
    for (Slot& sl : slots) {
      check(cudaStreamSynchronize(sl.stream.get()), "fit stream");
      sl.pending = -1;
    }
  }

  // The sweep, shared by every chunk, copied in the caller's stream; every
  // slot's stream waits for it (and so for the caller's earlier work).
  check(cudaMemcpyAsync(d_x.ensure(np), in.x, np * sizeof(float), cudaMemcpyHostToDevice, caller),
        "copy to device");
  Event x_ready;
  check(cudaEventRecord(x_ready.get(), caller), "cudaEventRecord");
  for (Slot& sl : slots)
    check(cudaStreamWaitEvent(sl.stream.get(), x_ready.get(), 0), "cudaStreamWaitEvent");

  // Waits for a slot's chunk and copies its results to the caller's arrays.
  auto drain = [&](Slot& sl) {
    if (sl.pending < 0) return;
    check(cudaStreamSynchronize(sl.stream.get()), "fit kernel");
    if (out.kernel_seconds) {
      float ms = 0;
      check(cudaEventElapsedTime(&ms, sl.kernel_start.get(), sl.kernel_stop.get()), "kernel timing");
      *out.kernel_seconds += 1e-3 * double(ms);
    }
    const std::int64_t c0 = plan.begin(sl.pending, in.n_pix);
    const std::size_t n = std::size_t(plan.size(sl.pending, in.n_pix));
    std::memcpy(out.params + std::size_t(c0) * P, sl.h_params.get(), n * P * sizeof(float));
    std::memcpy(out.sigma + std::size_t(c0) * P, sl.h_sigma.get(), n * P * sizeof(float));
    std::memcpy(out.chi2 + c0, sl.h_chi2.get(), n * sizeof(float));
    std::memcpy(out.state + c0, sl.h_state.get(), n * sizeof(std::int32_t));
    std::memcpy(out.iterations + c0, sl.h_iter.get(), n * sizeof(std::int32_t));
    sl.pending = -1;
  };

  for (std::int64_t k = 0; k < plan.n_chunks; ++k) {
    Slot& sl = slots[std::size_t(k % plan.slots)];
    drain(sl);  // its buffers are reused now
    const std::int64_t c0 = plan.begin(k, in.n_pix);
    const int n = int(plan.size(k, in.n_pix));  // <= fit_max_chunk_spectra
    const cudaStream_t s = sl.stream.get();

    pack_spectra(in.y, in, c0, n, sl.h_y.get());
    if (in.weights) pack_spectra(in.weights, in, c0, n, sl.h_w.get());
    if (in.mask) std::memcpy(sl.h_mask.get(), in.mask + c0, std::size_t(n));
    std::memcpy(sl.h_start.get(), in.start + std::size_t(c0) * P,
                std::size_t(n) * P * sizeof(float));

    // The staging buffer serves y, then w: the stream orders the two.
    spectra_to_device(sl.h_y.get(), in, n, sl.d_y.get(), sl.d_staging.get(), s);
    if (in.weights) spectra_to_device(sl.h_w.get(), in, n, sl.d_w.get(), sl.d_staging.get(), s);
    if (in.mask) to_device(sl.d_mask.get(), sl.h_mask.get(), std::size_t(n), s);
    to_device(sl.d_start.get(), sl.h_start.get(), std::size_t(n) * P, s);

    SpectraChunk c{};
    c.x = d_x.get();
    c.n_points = in.n_points;
    c.n = n;
    c.y = sl.d_y.get();
    c.w = in.weights ? sl.d_w.get() : nullptr;
    c.mask = in.mask ? sl.d_mask.get() : nullptr;
    c.start = sl.d_start.get();
    c.params = sl.d_params.get();
    c.sigma = sl.d_sigma.get();
    c.chi2 = sl.d_chi2.get();
    c.state = sl.d_state.get();
    c.iterations = sl.d_iter.get();
    check(cudaEventRecord(sl.kernel_start.get(), s), "cudaEventRecord");
    if (!launch_fit(model, config, c, s))
      throw std::invalid_argument("CUDA fit: no kernel for this model");
    check(cudaGetLastError(), "fit kernel launch");
    check(cudaEventRecord(sl.kernel_stop.get(), s), "cudaEventRecord");

    to_host(sl.h_params.get(), sl.d_params.get(), std::size_t(n) * P, s);
    to_host(sl.h_sigma.get(), sl.d_sigma.get(), std::size_t(n) * P, s);
    to_host(sl.h_chi2.get(), sl.d_chi2.get(), std::size_t(n), s);
    to_host(sl.h_state.get(), sl.d_state.get(), std::size_t(n), s);
    to_host(sl.h_iter.get(), sl.d_iter.get(), std::size_t(n), s);
    sl.pending = k;
  }
  for (Slot& sl : slots) drain(sl);
}

}  // namespace tessera::cuda

// XcorrCuda: device buffers, cuFFT plans, uploads and the launches. The
// kernels are in xcorr_kernels.cuh. This translation unit is compiled with
// --fmad=false (cuda/CMakeLists.txt): the spectra product and the double
// arithmetic of core::zncc_placement then round as the host's
// (-ffp-contract=off), so the GPU's R equals the CPU's whenever the numerators
// are equal; only the FFTs (cuFFT against FFTW) round differently.
#include <cufft.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "device_memory.cuh"
#include "xcorr_cuda.hpp"
#include "xcorr_kernels.cuh"

namespace tessera::cuda {
namespace {

void check(cudaError_t err, const char* what) { throw_on_error(err, "xcorr", what); }
void check(cufftResult r, const char* what) {
  if (r == CUFFT_SUCCESS) return;
  throw std::runtime_error(std::string("CUDA xcorr: ") + what + ": cuFFT error " + std::to_string(int(r)));
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// --top: the normalised searched region of each of a launch's n slots to the
// host, one pair at a time, handed to d.region_map with the pair's index
// (pair_of(i) for slot i). Only the region crosses the bus, not the padding.
template <class PairOf>
void send_regions(const XcorrPairsDesc& d, cudaStream_t stream, const float2* slots, std::size_t nc,
                  long long stride, int n, PairOf pair_of, std::vector<float>& host) {
  if (!d.region_map) return;
  const core::ZnccRegion r = d.region;
  const auto ny = std::size_t(r.y1 - r.y0 + 1), nx = std::size_t(r.x1 - r.x0 + 1);
  host.resize(ny * nx);
  for (int i = 0; i < n; ++i) {
    const float* src = reinterpret_cast<const float*>(slots + std::size_t(i) * nc) + r.y0 * stride + r.x0;
    check(cudaMemcpy2DAsync(host.data(), nx * sizeof(float), src, std::size_t(stride) * sizeof(float),
                            nx * sizeof(float), ny, cudaMemcpyDeviceToHost, stream),
          "copy to host");
    check(cudaStreamSynchronize(stream), "copy to host");
    d.region_map(pair_of(i), host.data());
  }
}

}  // namespace

struct XcorrCuda::Impl {
  XcorrCudaConfig cfg;
  std::int64_t budget = 0;
  cudaStream_t stream = nullptr;
  std::map<std::tuple<int, int, int, int>, cufftHandle> plans;  // (type, rows, cols, batch)

  DeviceArray<float2> tpl_spec, img_spec, slots;
  DeviceArray<double> tpl_tc, img_s1, img_s2;
  DeviceArray<float> img_pix;  // one image's pixels, uploaded
  DeviceArray<std::int32_t> img_counts;  // nonzero, diff_h, diff_v per image
  DeviceArray<xk::PairJob> jobs;
  DeviceArray<core::ZnccBest> partial_best, best;
  DeviceArray<float> partial_second;
  DeviceArray<xk::PeakOut> peaks;

  ~Impl() {
    for (auto& [k, p] : plans) cufftDestroy(p);
    if (stream) cudaStreamDestroy(stream);
  }

  // Batched in-place plan: R2C reads real rows of stride 2*(cols/2+1) and
  // writes complex rows of cols/2+1 over them; C2R the reverse.
  cufftHandle plan(cufftType type, int rows, int cols, int batch) {
    const auto key = std::make_tuple(int(type), rows, cols, batch);
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    int n[2] = {rows, cols};
    int real_embed[2] = {rows, 2 * (cols / 2 + 1)}, cplx_embed[2] = {rows, cols / 2 + 1};
    const int real_dist = rows * 2 * (cols / 2 + 1), cplx_dist = rows * (cols / 2 + 1);
    cufftHandle h = 0;
    const bool r2c = type == CUFFT_R2C;
    check(cufftPlanMany(&h, 2, n, r2c ? real_embed : cplx_embed, 1, r2c ? real_dist : cplx_dist,
                        r2c ? cplx_embed : real_embed, 1, r2c ? cplx_dist : real_dist, type, batch),
          "cufftPlanMany");
    if (cufftResult e = cufftSetStream(h, stream); e != CUFFT_SUCCESS) {
      cufftDestroy(h);
      check(e, "cufftSetStream");
    }
    plans[key] = h;
    return h;
  }

  // Host [rows][cols] into a zeroed slot of real row stride `stride` floats.
  void upload_padded(float2* slot, std::size_t slot_cplx, const float* host, int rows, int cols,
                     long long stride) {
    check(cudaMemsetAsync(slot, 0, slot_cplx * sizeof(float2), stream), "cudaMemsetAsync");
    check(cudaMemcpy2DAsync(slot, std::size_t(stride) * sizeof(float), host, std::size_t(cols) * sizeof(float),
                            std::size_t(cols) * sizeof(float), std::size_t(rows), cudaMemcpyHostToDevice,
                            stream),
          "copy to device");
  }

  // R2C in place over `count` slots from `first`, in launches of fft_batch
  // (the plan's fixed batch; trailing slots hold stale finite data).
  void transform_slots(float2* first, std::int64_t count, std::size_t slot_cplx, int rows, int cols) {
    const int fb = cfg.fft_batch;
    const cufftHandle h = plan(CUFFT_R2C, rows, cols, fb);
    for (std::int64_t s = 0; s < count; s += fb) {
      float2* p = first + std::size_t(s) * slot_cplx;
      check(cufftExecR2C(h, reinterpret_cast<cufftReal*>(p), reinterpret_cast<cufftComplex*>(p)), "cufftExecR2C");
    }
  }
};

XcorrCuda::XcorrCuda(const XcorrCudaConfig& config) : impl_(std::make_unique<Impl>()) {
  if (config.batch < 1 || config.fft_batch < 1)
    throw std::invalid_argument("CUDA xcorr: batch and fft_batch must be at least 1");
  impl_->cfg = config;
  int n = 0;
  check(cudaGetDeviceCount(&n), "no usable CUDA device");
  check(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  std::size_t free_b = 0, total_b = 0;
  check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  impl_->budget = config.memory_budget > 0 ? config.memory_budget : std::int64_t(free_b / 2);
}

XcorrCuda::~XcorrCuda() = default;

std::int64_t XcorrCuda::device_bytes() const {
  const Impl& m = *impl_;
  return std::int64_t(m.tpl_spec.bytes() + m.img_spec.bytes() + m.slots.bytes() + m.tpl_tc.bytes() +
                      m.img_s1.bytes() + m.img_s2.bytes() + m.img_counts.bytes() + m.jobs.bytes() +
                      m.partial_best.bytes() + m.best.bytes() + m.partial_second.bytes() + m.peaks.bytes() +
                      m.img_pix.bytes());
}

namespace {

void validate(const XcorrPairsDesc& d) {
  if (d.n_pairs < 0) throw std::invalid_argument("CUDA xcorr: negative number of pairs");
  if (d.n_pairs == 0) return;
  if (!d.images || !d.templates || !d.pairs || d.n_images < 1 || d.n_templates < 1)
    throw std::invalid_argument("CUDA xcorr: missing images, templates or pairs");
  const XcorrImageDesc& a = d.images[0];
  const core::ZnccTemplateStats& t = d.templates[0].stats;
  for (int i = 0; i < d.n_images; ++i) {
    const auto& e = d.images[i];
    if (!e.pixels) throw std::invalid_argument("CUDA xcorr: image " + std::to_string(i) + " lacks pixels");
    if (e.H != a.H || e.W != a.W)
      throw std::invalid_argument("CUDA xcorr: the images of one call must share a shape");
  }
  for (int i = 0; i < d.n_templates; ++i) {
    const auto& e = d.templates[i];
    if (!e.pixels || !e.stats.tc)
      throw std::invalid_argument("CUDA xcorr: template " + std::to_string(i) + " lacks pixels or tables");
    if (e.stats.h != t.h || e.stats.w != t.w)
      throw std::invalid_argument("CUDA xcorr: the templates of one call must share a shape");
  }
  if (a.H < 1 || a.W < 1 || t.h < 1 || t.w < 1 || t.h > a.H || t.w > a.W)
    throw std::invalid_argument("CUDA xcorr: each template must fit inside its image");
  const core::ZnccRegion r = d.region;
  if (r.y0 < 0 || r.x0 < 0 || r.y0 > r.y1 || r.x0 > r.x1 || r.y1 > a.H + t.h - 2 || r.x1 > a.W + t.w - 2)
    throw std::invalid_argument("CUDA xcorr: the search region is not inside the map");
  if (d.fft_rows < a.H || d.fft_cols < a.W || d.fft_rows <= r.y1 || d.fft_cols <= r.x1 || d.fft_cols % 2 != 0)
    throw std::invalid_argument("CUDA xcorr: the FFT size does not cover the search region");
  for (std::int64_t p = 0; p < d.n_pairs; ++p) {
    const std::int32_t i = d.pairs[2 * p], j = d.pairs[2 * p + 1];
    if (i < 0 || i >= d.n_images || j < 0 || j >= d.n_templates)
      throw std::invalid_argument("CUDA xcorr: pair " + std::to_string(p) + " is out of range");
  }
}

}  // namespace

void XcorrCuda::correlate(const XcorrPairsDesc& d, XcorrPeakDesc* out,
                          const std::function<void(std::int64_t)>& done) {
  validate(d);
  if (d.n_pairs == 0) return;
  if (!out) throw std::invalid_argument("CUDA xcorr: missing output array");
  Impl& m = *impl_;
  const int B = m.cfg.batch, FB = m.cfg.fft_batch;
  const int H = d.images[0].H, W = d.images[0].W;
  const int h = d.templates[0].stats.h, w = d.templates[0].stats.w;
  const int py = d.fft_rows, px = d.fft_cols;
  const long long stride = 2LL * (px / 2 + 1);              // real row stride of a slot
  const std::size_t nc = std::size_t(py) * std::size_t(px / 2 + 1);  // complex per slot
  const std::size_t slot_bytes = nc * sizeof(float2);
  const std::size_t img_tab = std::size_t(H + 1) * std::size_t(W + 1);
  const std::size_t tpl_tab = std::size_t(h + 1) * std::size_t(w + 1);
  const core::ZnccRegion r = d.region;
  const dim3 block(xk::kBX, xk::kBY);
  const unsigned gx = unsigned(ceil_div(r.x1 - r.x0 + 1, xk::kBX));
  const unsigned gy = unsigned(ceil_div(r.y1 - r.y0 + 1, xk::kBY));
  const int n_blocks = int(gx * gy);

  // ---- the budget: templates (spectra when they fit a quarter), launch slots,
  // then as many images (spectrum + tables) as fit. -------------------------------
  const std::int64_t nt = d.n_templates, ni_total = d.n_images;
  const std::int64_t pix_bytes = std::int64_t(H) * W * std::int64_t(sizeof(float));
  const std::int64_t tpl_slots = ceil_div(nt, FB) * FB;
  const bool cache_tpl = std::int64_t(tpl_slots * slot_bytes) <= m.budget / 4;
  const std::int64_t fixed = pix_bytes +
      std::int64_t(nt * tpl_tab * sizeof(double)) + (cache_tpl ? std::int64_t(tpl_slots * slot_bytes) : 0) +
      std::int64_t(B) * std::int64_t(slot_bytes + sizeof(xk::PairJob) + sizeof(core::ZnccBest) +
                                     sizeof(xk::PeakOut) +
                                     std::size_t(n_blocks) * (sizeof(core::ZnccBest) + sizeof(float)));
  const std::int64_t per_image = std::int64_t(slot_bytes + img_tab * (2 * sizeof(double) + 3 * sizeof(std::int32_t)));
  std::int64_t n_img = std::min<std::int64_t>(ni_total, std::max<std::int64_t>(0, (m.budget - fixed) / per_image));
  while (n_img > 0 && fixed + n_img * std::int64_t(img_tab * 28) + ceil_div(n_img, FB) * FB * std::int64_t(slot_bytes) > m.budget)
    --n_img;
  if (n_img < 1)
    throw std::runtime_error("CUDA xcorr: the device memory budget (" + std::to_string(m.budget >> 20) +
                             " MiB) holds less than one image and one launch of " + std::to_string(B) +
                             " pairs at FFT size " + std::to_string(py) + "x" + std::to_string(px));

  float2* d_slots = m.slots.ensure(std::size_t(B) * nc);
  xk::PairJob* d_jobs = m.jobs.ensure(std::size_t(B));
  core::ZnccBest* d_pbest = m.partial_best.ensure(std::size_t(B) * std::size_t(n_blocks));
  core::ZnccBest* d_best = m.best.ensure(std::size_t(B));
  float* d_psecond = m.partial_second.ensure(std::size_t(B) * std::size_t(n_blocks));
  xk::PeakOut* d_peaks = m.peaks.ensure(std::size_t(B));
  double* d_tc = m.tpl_tc.ensure(std::size_t(nt) * tpl_tab);
  float2* d_img_spec = m.img_spec.ensure(std::size_t(ceil_div(n_img, FB) * FB) * nc);
  float* d_pix = m.img_pix.ensure(std::size_t(H) * std::size_t(W));
  double* d_s1 = m.img_s1.ensure(std::size_t(n_img) * img_tab);
  double* d_s2 = m.img_s2.ensure(std::size_t(n_img) * img_tab);
  std::int32_t* d_counts = m.img_counts.ensure(std::size_t(n_img) * img_tab * 3);

  // ---- templates: centred, scaled and flipped on the host exactly as the CPU's
  // transform does, their prefix tables uploaded, spectra computed once. --------
  std::vector<float> flipped(std::size_t(nt) * std::size_t(h) * std::size_t(w));
  for (std::int64_t k = 0; k < nt; ++k) {
    const XcorrTemplateDesc& t = d.templates[k];
    float* f = flipped.data() + std::size_t(k) * std::size_t(h) * std::size_t(w);
    const double scale = std::ldexp(1.0, t.stats.fft_exp);
    for (int i = 0; i < h; ++i)
      for (int j = 0; j < w; ++j)
        f[std::size_t(h - 1 - i) * w + (w - 1 - j)] = core::zncc_fft_input(t.pixels[std::size_t(i) * w + j], t.tbar, scale);
    check(cudaMemcpyAsync(d_tc + std::size_t(k) * tpl_tab, t.stats.tc, tpl_tab * sizeof(double),
                          cudaMemcpyHostToDevice, m.stream),
          "copy to device");
  }
  auto tpl_host = [&](std::int64_t k) { return flipped.data() + std::size_t(k) * std::size_t(h) * std::size_t(w); };
  float2* d_tpl_spec = nullptr;
  if (cache_tpl) {
    d_tpl_spec = m.tpl_spec.ensure(std::size_t(tpl_slots) * nc);
    for (std::int64_t k = 0; k < nt; ++k) m.upload_padded(d_tpl_spec + std::size_t(k) * nc, nc, tpl_host(k), h, w, stride);
    m.transform_slots(d_tpl_spec, nt, nc, py, px);
  }

  // ---- pairs grouped by image (stable), images in groups of n_img --------------
  std::vector<std::int64_t> order(std::size_t(d.n_pairs));
  std::iota(order.begin(), order.end(), std::int64_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return d.pairs[2 * a] < d.pairs[2 * b]; });
  std::vector<xk::PairJob> jobs(static_cast<std::size_t>(B));
  std::vector<xk::PeakOut> peaks(static_cast<std::size_t>(B));
  std::vector<float> region_host;  // --top: one pair's searched region
  std::vector<int> slot_of_image(std::size_t(ni_total), -1);
  const float scale = 1.0f / float(std::size_t(py) * std::size_t(px));
  auto table_slot = [&](std::size_t g) {
    return core::ZnccTablesOut{d_s1 + g * img_tab, d_s2 + g * img_tab, d_counts + (3 * g + 0) * img_tab,
                               d_counts + (3 * g + 1) * img_tab, d_counts + (3 * g + 2) * img_tab};
  };
  const cufftHandle c2r = m.plan(CUFFT_C2R, py, px, B);
  const cufftHandle r2c_pairs = cache_tpl ? 0 : m.plan(CUFFT_R2C, py, px, B);

  std::size_t next = 0;
  while (next < order.size()) {
    // The images of this group: the next n_img distinct ones in pair order.
    std::vector<std::int32_t> group;
    std::size_t end = next;
    while (end < order.size()) {
      const std::int32_t im = d.pairs[2 * order[end]];
      if (group.empty() || group.back() != im) {
        if (std::int64_t(group.size()) == n_img) break;
        group.push_back(im);
      }
      ++end;
    }
    // Each image: its pixels up (the only per-image bytes on the bus), then
    // its tables and the transform's input built on the device.
    for (std::size_t g = 0; g < group.size(); ++g) {
      const XcorrImageDesc& e = d.images[group[g]];
      slot_of_image[std::size_t(group[g])] = int(g);
      check(cudaMemcpyAsync(d_pix, e.pixels, std::size_t(pix_bytes), cudaMemcpyHostToDevice, m.stream),
            "copy to device");
      const core::ZnccTablesOut t = table_slot(g);
      check(cudaMemsetAsync(t.s1, 0, std::size_t(W + 1) * sizeof(double), m.stream), "cudaMemsetAsync");
      check(cudaMemsetAsync(t.s2, 0, std::size_t(W + 1) * sizeof(double), m.stream), "cudaMemsetAsync");
      for (std::int32_t* c : {t.nonzero, t.diff_h, t.diff_v})
        check(cudaMemsetAsync(c, 0, std::size_t(W + 1) * sizeof(std::int32_t), m.stream), "cudaMemsetAsync");
      xk::tables_rows<<<unsigned(ceil_div(H, 128)), 128, 0, m.stream>>>(d_pix, H, W, t);
      check(cudaGetLastError(), "tables_rows launch");
      xk::tables_cols<<<unsigned(ceil_div(W + 1, 128)), 128, 0, m.stream>>>(H, W, t);
      check(cudaGetLastError(), "tables_cols launch");
      float2* spec = d_img_spec + g * nc;
      check(cudaMemsetAsync(spec, 0, slot_bytes, m.stream), "cudaMemsetAsync");
      xk::centre_into_slot<<<unsigned(std::min<std::int64_t>(ceil_div(std::int64_t(H) * W, 256), 4096)), 256, 0,
                             m.stream>>>(d_pix, H, W, e.centre, std::ldexp(1.0, e.fft_exp),
                                         reinterpret_cast<float*>(spec), stride);
      check(cudaGetLastError(), "centre_into_slot launch");
    }
    m.transform_slots(d_img_spec, std::int64_t(group.size()), nc, py, px);

    // ---- the group's pairs, B per launch ------------------------------------------
    for (std::size_t b0 = next; b0 < end; b0 += std::size_t(B)) {
      const int n = int(std::min<std::size_t>(std::size_t(B), end - b0));
      for (int i = 0; i < n; ++i) {
        const std::int64_t p = order[b0 + std::size_t(i)];
        const std::int32_t ii = d.pairs[2 * p], ti = d.pairs[2 * p + 1];
        const XcorrImageDesc& e = d.images[ii];
        const std::size_t g = std::size_t(slot_of_image[std::size_t(ii)]);
        xk::PairJob& j = jobs[std::size_t(i)];
        const core::ZnccTablesOut t = table_slot(g);
        j.im = {t.s1, t.s2, t.nonzero, t.diff_h, t.diff_v, H, W, e.centre, e.flat_bound, e.fft_exp};
        j.t = d.templates[ti].stats;
        j.t.tc = d_tc + std::size_t(ti) * tpl_tab;
        j.slot = d_slots + std::size_t(i) * nc;
        j.ispec = d_img_spec + g * nc;
        j.tspec = cache_tpl ? d_tpl_spec + std::size_t(ti) * nc : j.slot;
        if (!cache_tpl) m.upload_padded(j.slot, nc, tpl_host(ti), h, w, stride);
      }
      if (!cache_tpl)
        check(cufftExecR2C(r2c_pairs, reinterpret_cast<cufftReal*>(d_slots), reinterpret_cast<cufftComplex*>(d_slots)),
              "cufftExecR2C");
      check(cudaMemcpyAsync(d_jobs, jobs.data(), std::size_t(n) * sizeof(xk::PairJob), cudaMemcpyHostToDevice,
                            m.stream),
            "copy to device");
      const unsigned mul_blocks = unsigned(std::min<std::int64_t>(ceil_div(std::int64_t(nc), 256), 4096));
      xk::multiply_spectra<<<dim3(mul_blocks, unsigned(n)), 256, 0, m.stream>>>(d_jobs, (long long)nc, scale);
      check(cudaGetLastError(), "multiply_spectra launch");
      check(cufftExecC2R(c2r, reinterpret_cast<cufftComplex*>(d_slots), reinterpret_cast<cufftReal*>(d_slots)),
            "cufftExecC2R");
      const dim3 grid(gx, gy, unsigned(n));
      xk::normalise_argmax<<<grid, block, 0, m.stream>>>(d_jobs, r, stride, d.eps, d.min_overlap, d_pbest);
      check(cudaGetLastError(), "normalise_argmax launch");
      xk::reduce_best<<<unsigned(n), block, 0, m.stream>>>(d_pbest, n_blocks, d_best);
      check(cudaGetLastError(), "reduce_best launch");
      xk::second_best<<<grid, block, 0, m.stream>>>(d_jobs, d_best, r, stride, d.exclusion, d_psecond);
      check(cudaGetLastError(), "second_best launch");
      xk::peak_quality<<<unsigned(n), block, 0, m.stream>>>(d_jobs, d_best, d_psecond, n_blocks, r, stride, d_peaks);
      check(cudaGetLastError(), "peak_quality launch");
      check(cudaMemcpyAsync(peaks.data(), d_peaks, std::size_t(n) * sizeof(xk::PeakOut), cudaMemcpyDeviceToHost,
                            m.stream),
            "copy to host");
      check(cudaStreamSynchronize(m.stream), "xcorr launch");
      for (int i = 0; i < n; ++i) {
        const xk::PeakOut& q = peaks[std::size_t(i)];
        XcorrPeakDesc& o = out[order[b0 + std::size_t(i)]];
        o.y = q.best.y;
        o.x = q.best.x;
        o.value = q.best.value;
        o.sub_y = q.shape.sub_y;
        o.sub_x = q.shape.sub_x;
        o.sharpness = q.shape.sharpness;
        o.peak_ratio = q.peak_ratio;
      }
      send_regions(d, m.stream, d_slots, nc, stride, n, [&](int i) { return order[b0 + std::size_t(i)]; },
                   region_host);
      if (done) done(n);
    }
    for (std::int32_t im : group) slot_of_image[std::size_t(im)] = -1;
    next = end;
  }
}

}  // namespace tessera::cuda

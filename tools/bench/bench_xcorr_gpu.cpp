// bench_xcorr_gpu: pairs per second of the GPU xcorr backend against the CPU
// backend on the same pairs (xcorr::simulate_tiles; by default 24 images
// 1024x1024, 24 templates 256x256, 160 pairs, full mode), with the agreement
// check of tests/cuda/test_xcorr_cuda.cpp. A measurement program, not a test.
// Without CUDA in the build or without a device it says so and exits 0.
//
//   bench_xcorr_gpu [--images N] [--size HxW] [--template hxw] [--pairs P]
//                   [--threads T] [--batch B] [--repeat R] [--skip-cpu]
//
// Times: "prepare" is the host's PreparedImage/PreparedTemplate (the CPU's
// prefix sums; the GPU takes the centre and flat bound from them);
// "correlate" is the rest: CPU, FFTW transforms and the normalisation over T
// threads; GPU, uploads, cuFFT, the fused kernel and the copies back (the best
// of R runs on a warm context, after one run that creates the plans).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "xcorr/simulate_tiles.hpp"
#include "xcorr/xcorr.hpp"
#include "core/threads.hpp"
#if defined(TESSERA_HAVE_CUDA)
#include "api/xcorr_cuda_bridge.hpp"
#include "cuda/device_info.hpp"
#include "cuda/xcorr_cuda.hpp"
#endif

namespace {

using namespace tessera;
using Clock = std::chrono::steady_clock;
[[maybe_unused]] double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Args {
  int images = 24, H = 1024, W = 1024, h = 256, w = 256, threads = 0, batch = 8, repeat = 3;
  long long pairs = 160;
  bool skip_cpu = false;
};

bool parse_shape(const char* s, int& a, int& b) { return std::sscanf(s, "%dx%d", &a, &b) == 2 && a > 0 && b > 0; }

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_xcorr_gpu: %s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    bool ok = true;
    if (k == "--images") a.images = std::atoi(val());
    else if (k == "--size") ok = parse_shape(val(), a.H, a.W);
    else if (k == "--template") ok = parse_shape(val(), a.h, a.w);
    else if (k == "--pairs") a.pairs = std::atoll(val());
    else if (k == "--threads") a.threads = std::atoi(val());
    else if (k == "--batch") a.batch = std::atoi(val());
    else if (k == "--repeat") a.repeat = std::max(1, std::atoi(val()));
    else if (k == "--skip-cpu") a.skip_cpu = true;
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "bench_xcorr_gpu: bad option %s (see the comment at the top of bench_xcorr_gpu.cpp)\n",
                   k.c_str());
      std::exit(2);
    }
  }
  if (a.threads <= 0) a.threads = tessera::core::usable_cores();
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
#if !defined(TESSERA_HAVE_CUDA)
  (void)a;
  std::printf("bench_xcorr_gpu: this build has no CUDA backend (nvcc was not found); nothing to measure\n");
  return 0;
#else
  const cuda::DeviceQuery q = cuda::query_devices();
  if (q.devices.empty()) {
    std::printf("bench_xcorr_gpu: no CUDA device visible (%s); nothing to measure\n", q.message.c_str());
    return 0;
  }
  const cuda::DeviceInfo& dev = q.devices[0];
  std::printf("device 0: %s, %d SMs, %.1f GiB\n", dev.name.c_str(), dev.multiprocessors,
              double(dev.total_memory) / double(1 << 30));

  xcorr::TileSimOptions so;
  so.n_images = a.images;
  so.height = a.H;
  so.width = a.W;
  so.tpl_height = a.h;
  so.tpl_width = a.w;
  so.n_pairs = a.pairs;
  so.seed = 1;
  const xcorr::TileSim s = xcorr::simulate_tiles(so);
  const std::size_t np = s.pairs.size() / 2;
  std::printf("case: %d images %dx%d, %d templates %dx%d, %zu pairs, full mode, FFT %dx%d\n", s.n, s.H, s.W, s.k,
              s.h, s.w, np, xcorr::fft_size(s.H, s.W, s.h, s.w, xcorr::Options{}).first,
              xcorr::fft_size(s.H, s.W, s.h, s.w, xcorr::Options{}).second);

  const xcorr::Options opt;
  auto t0 = Clock::now();
  std::vector<std::unique_ptr<xcorr::PreparedImage>> images(std::size_t(s.n));
  std::vector<std::unique_ptr<xcorr::PreparedTemplate>> templates(std::size_t(s.k));
  xcorr::parallel_for(std::size_t(s.n + s.k), a.threads, [&](std::size_t i) {
    if (i < std::size_t(s.n)) {
      images[i] = std::make_unique<xcorr::PreparedImage>(
          xcorr::View{s.images.data() + i * std::size_t(s.H) * s.W, s.H, s.W}, false);
    } else {
      const std::size_t k = i - std::size_t(s.n);
      templates[k] = std::make_unique<xcorr::PreparedTemplate>(
          xcorr::View{s.templates.data() + k * std::size_t(s.h) * s.w, s.h, s.w}, true);
    }
  });
  const double t_prepare = since(t0);
  std::vector<const xcorr::PreparedImage*> ip;
  std::vector<const xcorr::PreparedTemplate*> tp;
  for (auto& p : images) ip.push_back(p.get());
  for (auto& p : templates) tp.push_back(p.get());
  std::vector<std::pair<int, int>> pairs(np);
  for (std::size_t p = 0; p < np; ++p) pairs[p] = {int(s.pairs[2 * p]), int(s.pairs[2 * p + 1])};
  std::printf("prepare (host PreparedImage/Template, %d threads): %.3f s\n", a.threads, t_prepare);

  // GPU: one run to create the plans and caches' buffers, then the best of R.
  cuda::XcorrCudaConfig cfg;
  cfg.batch = a.batch;
  cuda::XcorrCuda gpu(cfg);
  std::vector<xcorr::Peak> g = api::correlate_pairs_cuda(gpu, ip, tp, pairs, opt);
  double t_gpu = 1e300;
  for (int r = 0; r < a.repeat; ++r) {
    t0 = Clock::now();
    g = api::correlate_pairs_cuda(gpu, ip, tp, pairs, opt);
    t_gpu = std::min(t_gpu, since(t0));
  }
  std::printf("gpu: %.4f s, %.1f pairs/s (batch %d, device memory %.0f MiB)\n", t_gpu, double(np) / t_gpu,
              a.batch, double(gpu.device_bytes()) / double(1 << 20));
  if (a.skip_cpu) return 0;

  t0 = Clock::now();
  const std::vector<xcorr::Peak> c = xcorr::correlate_pairs(ip, tp, pairs, opt, a.threads);
  const double t_cpu = since(t0);
  std::printf("cpu: %.4f s, %.1f pairs/s (%d threads)\n", t_cpu, double(np) / t_cpu, a.threads);
  std::printf("speed-up: %.1fx\n", t_cpu / t_gpu);

  std::size_t coords_differ = 0;
  double dpeak = 0, dsub = 0, dsharp = 0, dratio = 0;
  for (std::size_t p = 0; p < np; ++p) {
    if (c[p].y != g[p].y || c[p].x != g[p].x) ++coords_differ;
    dpeak = std::max(dpeak, double(std::fabs(c[p].value - g[p].value)));
    dsub = std::max({dsub, std::fabs(c[p].sub_y - g[p].sub_y), std::fabs(c[p].sub_x - g[p].sub_x)});
    dsharp = std::max(dsharp, double(std::fabs(c[p].sharpness - g[p].sharpness)));
    if (std::isfinite(c[p].peak_ratio) && std::isfinite(g[p].peak_ratio))
      dratio = std::max(dratio, double(std::fabs(c[p].peak_ratio - g[p].peak_ratio) / std::fabs(c[p].peak_ratio)));
    else if (c[p].peak_ratio != g[p].peak_ratio)
      dratio = INFINITY;
  }
  const bool ok = coords_differ == 0 && dpeak <= 1e-5 && dsub <= 1e-4 && dsharp <= 1e-4 && dratio <= 1e-4;
  std::printf("agreement: coords differ %zu, max |peak| %.2e, |subpixel| %.2e, |sharpness| %.2e, "
              "peak_ratio rel %.2e: %s\n",
              coords_differ, dpeak, dsub, dsharp, dratio, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
#endif
}

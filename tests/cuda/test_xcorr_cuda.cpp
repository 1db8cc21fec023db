// Cross-backend consistency of xcorr: the same pairs correlated by the CPU
// backend (xcorr::correlate_pairs, FFTW) and by the GPU backend
// (cuda::XcorrCuda, cuFFT). The FFTs round differently, so: coordinates equal,
// peaks within 1e-5, sub-placement positions and sharpness within 1e-4, peak
// ratios within 1e-4 relative (or both +inf). Skipped, with the reason, when no
// CUDA device is visible; without one, the context must refuse clearly.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/xcorr_cuda_bridge.hpp"
#include "cuda/device_info.hpp"
#include "cuda/xcorr_cuda.hpp"
#include "cuda/xcorr_masked_cuda.hpp"
#include "xcorr/simulate_tiles.hpp"
#include "xcorr/xcorr.hpp"

namespace {

using namespace tessera;

struct Set {
  std::vector<std::unique_ptr<xcorr::PreparedImage>> images;
  std::vector<std::unique_ptr<xcorr::PreparedTemplate>> templates;
  std::vector<const xcorr::PreparedImage*> ip;
  std::vector<const xcorr::PreparedTemplate*> tp;
  std::vector<std::pair<int, int>> pairs;
};

// host_tables false: the images as tessera xcorr prepares them for the GPU.
Set make_set(const xcorr::TileSim& s, bool normalize_input, bool host_tables = true) {
  Set out;
  for (int i = 0; i < s.n; ++i) {
    out.images.push_back(std::make_unique<xcorr::PreparedImage>(
        xcorr::View{s.images.data() + std::size_t(i) * s.H * s.W, s.H, s.W}, normalize_input,
        host_tables));
    out.ip.push_back(out.images.back().get());
  }
  for (int k = 0; k < s.k; ++k) {
    out.templates.push_back(std::make_unique<xcorr::PreparedTemplate>(
        xcorr::View{s.templates.data() + std::size_t(k) * s.h * s.w, s.h, s.w}, true));
    out.tp.push_back(out.templates.back().get());
  }
  for (std::size_t p = 0; p < s.pairs.size() / 2; ++p)
    out.pairs.push_back({int(s.pairs[2 * p]), int(s.pairs[2 * p + 1])});
  return out;
}

void expect_close(const std::vector<xcorr::Peak>& cpu, const std::vector<xcorr::Peak>& gpu,
                  const std::string& what) {
  ASSERT_EQ(cpu.size(), gpu.size());
  for (std::size_t p = 0; p < cpu.size(); ++p) {
    const xcorr::Peak &a = cpu[p], &b = gpu[p];
    EXPECT_EQ(a.y, b.y) << what << " pair " << p;
    EXPECT_EQ(a.x, b.x) << what << " pair " << p;
    EXPECT_NEAR(a.value, b.value, 1e-5) << what << " pair " << p;
    EXPECT_NEAR(a.sub_y, b.sub_y, 1e-4) << what << " pair " << p;
    EXPECT_NEAR(a.sub_x, b.sub_x, 1e-4) << what << " pair " << p;
    EXPECT_NEAR(a.sharpness, b.sharpness, 1e-4) << what << " pair " << p;
    if (std::isinf(a.peak_ratio) || std::isinf(b.peak_ratio))
      EXPECT_EQ(a.peak_ratio, b.peak_ratio) << what << " pair " << p;
    else
      EXPECT_NEAR(a.peak_ratio, b.peak_ratio, 1e-4 * std::fabs(a.peak_ratio)) << what << " pair " << p;
  }
}

class CudaXcorr : public ::testing::Test {
 protected:
  void SetUp() override {
    const cuda::DeviceQuery q = cuda::query_devices();
    if (q.devices.empty()) GTEST_SKIP() << "no CUDA device visible (" << q.message << ")";
  }
};

// Tiles with known offsets, several options; small batches so that launches
// are partial, a small budget so that images come in several groups and
// templates are transformed per pair.
TEST_F(CudaXcorr, MatchesCpuBackend) {
  xcorr::TileSimOptions so;
  so.n_images = 6;
  so.height = 96;
  so.width = 112;
  so.n_pairs = 29;
  so.seed = 5;
  const xcorr::TileSim s = xcorr::simulate_tiles(so);
  std::vector<xcorr::Options> opts(4);
  opts[1].mode = xcorr::Mode::valid;
  opts[2].crop_y = 7, opts[2].crop_x = 3, opts[2].exclusion = 2;
  opts[3].normalize_input = true;
  for (const xcorr::Options& o : opts)
    for (const auto& [batch, budget] : {std::pair<int, std::int64_t>{8, 0}, {3, 2 << 20}}) {
      const Set set = make_set(s, o.normalize_input);
      const auto cpu = xcorr::correlate_pairs(set.ip, set.tp, set.pairs, o, 2);
      // The GPU gets images without host tables, as in tessera xcorr.
      const Set bare = make_set(s, o.normalize_input, false);
      cuda::XcorrCudaConfig cfg;
      cfg.batch = batch;
      cfg.memory_budget = budget;
      cuda::XcorrCuda gpu(cfg);
      std::int64_t reported = 0;
      const auto g = api::correlate_pairs_cuda(gpu, bare.ip, bare.tp, bare.pairs, o,
                                               [&](std::int64_t n) { reported += n; });
      EXPECT_EQ(reported, std::int64_t(set.pairs.size()));
      expect_close(cpu, g, "mode " + std::to_string(int(o.mode)) + " batch " + std::to_string(batch));
      // The known offsets are found.
      for (std::int64_t p = 0; p < s.n_matching; ++p) {
        EXPECT_EQ(g[std::size_t(p)].y, s.truth[std::size_t(2 * p)]) << "pair " << p;
        EXPECT_EQ(g[std::size_t(p)].x, s.truth[std::size_t(2 * p + 1)]) << "pair " << p;
      }
      if (o.mode != xcorr::Mode::full || o.crop_y || o.normalize_input) break;
    }
}

// Flat and constant inputs: exactly 0 on both backends, ties to the first placement.
TEST_F(CudaXcorr, FlatAndConstantInputs) {
  std::vector<float> img(20 * 20, 7.0f), tpl(16);
  for (int i = 0; i < 16; ++i) tpl[std::size_t(i)] = float((i * 7) % 5);
  std::vector<float> flat_tpl(16, 3.0f);
  xcorr::PreparedImage im(xcorr::View{img.data(), 20, 20}, false);
  xcorr::PreparedTemplate t0(xcorr::View{tpl.data(), 4, 4}, false), t1(xcorr::View{flat_tpl.data(), 4, 4}, false);
  const std::vector<const xcorr::PreparedImage*> ip{&im};
  const std::vector<const xcorr::PreparedTemplate*> tp{&t0, &t1};
  const std::vector<std::pair<int, int>> pairs{{0, 0}, {0, 1}};
  for (xcorr::Mode mode : {xcorr::Mode::valid, xcorr::Mode::full}) {
    xcorr::Options o;
    o.mode = mode;
    cuda::XcorrCuda gpu;
    const auto g = api::correlate_pairs_cuda(gpu, ip, tp, pairs, o);
    expect_close(xcorr::correlate_pairs(ip, tp, pairs, o, 1), g, "flat");
    if (mode == xcorr::Mode::valid) {
      EXPECT_EQ(g[0].value, 0.0f);
      EXPECT_EQ(g[0].y, 3);
      EXPECT_EQ(g[0].x, 3);
    }
    EXPECT_EQ(g[1].value, 0.0f);
  }
}

// Masked pairs: the host's masked path with cuFFT doing its double
// correlations; mixed with unmasked pairs in one call. Same coordinates and
// --top candidates as the CPU, peaks within 1e-6 (only the FFTs round
// differently, in double here).
TEST_F(CudaXcorr, MaskedPairsMatchCpuBackend) {
  xcorr::TileSimOptions so;
  so.n_images = 6;
  so.height = 96;
  so.width = 112;
  so.n_pairs = 23;
  so.seed = 8;
  so.charging = 0.5;
  const xcorr::TileSim s = xcorr::simulate_tiles(so);
  const std::size_t ip = std::size_t(s.H) * s.W, tp = std::size_t(s.h) * s.w;
  std::vector<std::unique_ptr<xcorr::PreparedImage>> images, bare;
  std::vector<std::unique_ptr<xcorr::PreparedTemplate>> templates;
  for (int i = 0; i < s.n; ++i) {
    const xcorr::View v{s.images.data() + i * ip, s.H, s.W, s.image_masks.data() + i * ip};
    images.push_back(std::make_unique<xcorr::PreparedImage>(v, false));
    bare.push_back(std::make_unique<xcorr::PreparedImage>(v, false, false));
  }
  for (int k = 0; k < s.k; ++k)
    templates.push_back(std::make_unique<xcorr::PreparedTemplate>(
        xcorr::View{s.templates.data() + k * tp, s.h, s.w, s.template_masks.data() + k * tp}, false));
  std::vector<const xcorr::PreparedImage*> ci, gi;
  std::vector<const xcorr::PreparedTemplate*> ct;
  for (auto& p : images) ci.push_back(p.get());
  for (auto& p : bare) gi.push_back(p.get());
  for (auto& p : templates) ct.push_back(p.get());
  std::vector<std::pair<int, int>> pairs;
  for (std::size_t p = 0; p < s.pairs.size() / 2; ++p) pairs.emplace_back(int(s.pairs[2 * p]), int(s.pairs[2 * p + 1]));
  xcorr::Options o;
  o.min_overlap = 0.3;
  o.top_k = 3;
  std::vector<core::ZnccBest> cpu_top, gpu_top;
  const auto cpu = xcorr::correlate_pairs(ci, ct, pairs, o, 2, {}, &cpu_top);
  cuda::XcorrCuda gpu;
  cuda::MaskedCorrelatorCuda masked;
  const auto g = api::correlate_pairs_cuda_masked(gpu, masked, gi, ct, pairs, o, {}, &gpu_top);
  ASSERT_EQ(cpu.size(), g.size());
  for (std::size_t p = 0; p < g.size(); ++p) {
    EXPECT_EQ(cpu[p].y, g[p].y) << "pair " << p;
    EXPECT_EQ(cpu[p].x, g[p].x) << "pair " << p;
    EXPECT_NEAR(cpu[p].value, g[p].value, 1e-6) << "pair " << p;
  }
  ASSERT_EQ(cpu_top.size(), gpu_top.size());
  for (std::size_t i = 0; i < cpu_top.size(); ++i) {
    EXPECT_EQ(cpu_top[i].y, gpu_top[i].y) << "candidate " << i;
    EXPECT_EQ(cpu_top[i].x, gpu_top[i].x) << "candidate " << i;
  }
}

TEST_F(CudaXcorr, RefusesInconsistentInput) {
  cuda::XcorrCuda gpu;
  cuda::XcorrPairsDesc d;
  d.n_pairs = 1;
  EXPECT_THROW(gpu.correlate(d, nullptr), std::invalid_argument);
}

// Runs everywhere: without a device, creating a context fails with a clear
// one-line runtime_error (the CLI agrees on the backend first, so it never
// gets there; a library caller does).
TEST(CudaXcorrNoDevice, ContextRefusesClearly) {
  if (!cuda::query_devices().devices.empty()) GTEST_SKIP() << "a CUDA device is visible";
  try {
    cuda::XcorrCuda gpu;
    FAIL() << "a context was created without a device";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("CUDA xcorr"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

}  // namespace

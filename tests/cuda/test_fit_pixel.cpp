// The per-spectrum code of the CUDA fit kernels (cuda/fit_pixel.hpp: one thread
// per fit; cuda/fit_warp.hpp: one warp per fit, its 32 lanes run one after the
// other), run on the CPU over the same sweep-major chunk layout the kernels
// read, against the CPU batch backend (SIMD lanes, src/fit). Needs no GPU and
// no CUDA toolkit, so the GPU path's input checks, strides, states and outputs
// are tested on every machine; test_cuda_fit.cpp then only has to show that
// nvcc's build of the same code agrees.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "consistency.hpp"
#include "cuda/fit_pixel.hpp"
#include "cuda/fit_warp.hpp"
#include "fit/model_dispatch.hpp"

namespace {

using namespace tessera::test_cuda;

enum class Body { thread, warp };

// fit_pixel (or warp_fit_pixel, with the lanes in turn) for every spectrum, in
// chunks of `chunk` spectra (0: one chunk), as fit_batch_cuda hands them to the
// kernels.
FitResults fit_scalar(const Problem& p, const FitOptions& o, std::int64_t chunk = 0,
                      Body body = Body::thread) {
  FitResults r = empty_results(p);
  const tc::FitConfigDesc desc = to_cuda(p.spec, o);
  const int n_points = p.n_points();
  if (chunk <= 0) chunk = p.n_pix;
  tessera::fit::visit_model(p.spec, [&](const auto& model) {
    constexpr int P = std::remove_cvref_t<decltype(model)>::n_params;
    const auto cfg = tc::make_lm_config<P>(desc);
    for (std::int64_t c0 = 0; c0 < p.n_pix; c0 += chunk) {
      const int n = int(std::min(chunk, p.n_pix - c0));
      // The chunk's spectra, sweep-major, as the device holds them.
      std::vector<float> y(std::size_t(n) * n_points), w;
      if (!p.weights.empty()) w.resize(y.size());
      for (int pix = 0; pix < n; ++pix)
        for (int i = 0; i < n_points; ++i) {
          const std::size_t src = std::size_t(c0 + pix) * n_points + i;
          y[std::size_t(i) * n + pix] = p.y[src];
          if (!w.empty()) w[std::size_t(i) * n + pix] = p.weights[src];
        }
      tc::SpectraChunk c{};
      c.x = p.x.data();
      c.n_points = n_points;
      c.n = n;
      c.y = y.data();
      c.w = w.empty() ? nullptr : w.data();
      c.mask = p.mask.empty() ? nullptr : p.mask.data() + c0;
      c.start = p.start.data() + std::size_t(c0) * P;
      c.params = r.params.data() + std::size_t(c0) * P;
      c.sigma = r.sigma.data() + std::size_t(c0) * P;
      c.chi2 = r.chi2.data() + c0;
      c.state = r.state.data() + c0;
      c.iterations = r.iterations.data() + c0;
      if (body == Body::thread) {
        for (int pix = 0; pix < n; ++pix) tc::fit_pixel(model, cfg, c, pix);
      } else {
        // One warp's scratch, reused by the next spectrum as on the device;
        // filled with NaN so that a value read before it is written shows.
        auto scratch = std::make_unique<tc::WarpFitScratch<P>>();
        std::memset(static_cast<void*>(scratch.get()), 0xff, sizeof(*scratch));
        for (int pix = 0; pix < n; ++pix)
          tc::warp_fit_pixel(tc::HostWarp{}, model, cfg, c, pix, *scratch);
      }
    }
  });
  return r;
}

class FitPixelCase : public ::testing::TestWithParam<std::string> {};

TEST_P(FitPixelCase, MatchesCpuBackend) {
  const Case c = make_case(GetParam());
  const FitResults cpu = fit_cpu(c.problem, c.options);
  const FitResults scalar = fit_scalar(c.problem, c.options);
  EXPECT_GE(expect_consistent(c.problem, cpu, scalar, c.tol),
            std::int64_t(c.min_fitted * c.problem.n_pix));
  // On the host the scalar body sums in the CPU lanes' order with the same
  // explicit fused multiply-adds (src/core: eval_tile, vfma), so the bits agree;
  // only nvcc's build may differ, by rounding.
  expect_identical(cpu, scalar);
}

// The warp's split of each evaluation (a point per lane, entries of the normal
// matrix per lane, sums in point order) reproduces the one-thread fit bit for
// bit on the host, for every model, estimator and sweep length of the cases.
TEST_P(FitPixelCase, WarpPerFitMatchesThreadPerFit) {
  const Case c = make_case(GetParam());
  const FitResults thread = fit_scalar(c.problem, c.options);
  const FitResults warp = fit_scalar(c.problem, c.options, 0, Body::warp);
  EXPECT_GE(expect_consistent(c.problem, fit_cpu(c.problem, c.options), warp, c.tol),
            std::int64_t(c.min_fitted * c.problem.n_pix));
  expect_identical(thread, warp);
}

INSTANTIATE_TEST_SUITE_P(Models, FitPixelCase, ::testing::ValuesIn(case_names()),
                         [](const auto& info) { return info.param; });

TEST(FitPixel, UnfittableStates) {
  const Problem p = unfittable_problem();
  const FitOptions o;
  const FitResults scalar = fit_scalar(p, o);
  expect_consistent(p, fit_cpu(p, o), scalar);
  expect_identical(fit_cpu(p, o), scalar);
  expect_unfittable_states(p, scalar);
  const FitResults warp = fit_scalar(p, o, 0, Body::warp);
  expect_identical(scalar, warp);
  expect_unfittable_states(p, warp);
}

// Sweeps shorter than, equal to and just over one block of 32 points, and not
// a multiple of the 16-point tile: the last partial block and tile.
TEST(FitPixel, WarpPerFitPartialBlocks) {
  for (const int n_points : {13, 32, 33, 47, 70}) {
    Problem p = odmr(ModelKind::lorentzian, 3, false, 40);
    // n_points of each spectrum, evenly spread over the sweep (3 peaks: 10
    // parameters).
    const int full = p.n_points();
    std::vector<float> x(static_cast<std::size_t>(n_points));
    std::vector<float> y(static_cast<std::size_t>(p.n_pix) * n_points);
    for (int i = 0; i < n_points; ++i) {
      const int src = int(std::lround(double(i) * (full - 1) / (n_points - 1)));
      x[std::size_t(i)] = p.x[std::size_t(src)];
      for (std::int64_t pix = 0; pix < p.n_pix; ++pix)
        y[std::size_t(pix) * n_points + i] = p.y[std::size_t(pix) * full + src];
    }
    p.x = x;
    p.y = y;
    const FitOptions o;
    SCOPED_TRACE("n_points " + std::to_string(n_points));
    const FitResults thread = fit_scalar(p, o);
    expect_identical(thread, fit_scalar(p, o, 0, Body::warp));
    // Not all of them fail: the comparison covers fitted spectra too.
    std::int64_t fitted = 0;
    for (const auto s : thread.state)
      fitted += s == tessera::core::state_value(tessera::core::FitState::converged);
    EXPECT_GT(fitted, 0);
  }
}

// A fit depends on its own spectrum only: chunk boundaries change nothing.
TEST(FitPixel, ChunkingDoesNotChangeResults) {
  Problem p = odmr(ModelKind::lorentzian, 2, true, 200);
  p.weights.assign(p.y.size(), 2.0f);
  p.mask.assign(p.n_pix, 0);
  p.mask[17] = 1;
  const FitOptions o;
  const FitResults ref = fit_scalar(p, o);
  expect_identical(ref, fit_scalar(p, o, 37));
  expect_identical(ref, fit_scalar(p, o, 1));
}

TEST(FitPixel, ConfigFromDescription) {
  tc::FitConfigDesc d;
  d.estimator = tessera::core::Estimator::mle;
  d.max_iter = 7;
  d.tol = 1e-5f;
  d.fixed[1] = true;
  d.lo[2] = -1;
  d.hi[2] = 2;
  const auto cfg = tc::make_lm_config<4>(d);
  EXPECT_EQ(cfg.estimator, tessera::core::Estimator::mle);
  EXPECT_EQ(cfg.max_iter, 7);
  EXPECT_FLOAT_EQ(cfg.ftol, 1e-5f);
  EXPECT_FLOAT_EQ(cfg.xtol, 1e-5f);
  EXPECT_TRUE(cfg.free[0]);
  EXPECT_FALSE(cfg.free[1]);
  EXPECT_EQ(cfg.lo[2], -1.0f);
  EXPECT_EQ(cfg.hi[2], 2.0f);
  EXPECT_EQ(cfg.lo[0], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(cfg.n_free(), 3);
}

}  // namespace

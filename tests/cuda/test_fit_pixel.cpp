// The per-spectrum code of the CUDA fit kernel (cuda/fit_pixel.hpp), run on the
// CPU over the same sweep-major chunk layout the kernel reads, against the CPU
// batch backend (SIMD lanes, src/fit). Needs no GPU and no CUDA toolkit, so the
// GPU path's input checks, strides, states and outputs are tested on every
// machine; test_cuda_fit.cpp then only has to show that nvcc's build of the
// same code agrees.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "consistency.hpp"
#include "cuda/fit_pixel.hpp"
#include "fit/model_dispatch.hpp"

namespace {

using namespace tessera::test_cuda;

// fit_pixel for every spectrum, in chunks of `chunk` spectra (0: one chunk), as
// fit_batch_cuda hands them to the kernel.
FitResults fit_scalar(const Problem& p, const FitOptions& o, std::int64_t chunk = 0) {
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
      for (int pix = 0; pix < n; ++pix) tc::fit_pixel(model, cfg, c, pix);
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

INSTANTIATE_TEST_SUITE_P(Models, FitPixelCase, ::testing::ValuesIn(case_names()),
                         [](const auto& info) { return info.param; });

TEST(FitPixel, UnfittableStates) {
  const Problem p = unfittable_problem();
  const FitOptions o;
  const FitResults scalar = fit_scalar(p, o);
  expect_consistent(p, fit_cpu(p, o), scalar);
  expect_identical(fit_cpu(p, o), scalar);
  expect_unfittable_states(p, scalar);
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

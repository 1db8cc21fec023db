// Cross-backend consistency (after Gpufit tests/Consistency.cpp): the same
// synthetic spectra fitted by the CPU backend (tessera::fit::fit_batch) and by
// the CUDA backend (tessera::cuda::fit_batch_cuda) must end in the same states,
// with parameters within 1e-4 relative or a small fraction of their one-sigma
// error (Tolerance in consistency.hpp says why). Skipped, with the reason, when
// no CUDA device is visible; the argument checks and the device query run
// everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "consistency.hpp"
#include "cuda/device_info.hpp"
#include "cuda/fit_cuda.hpp"

namespace {

using namespace tessera::test_cuda;

// layout: how the spectra are handed to the GPU (a transposed copy is made
// for sweep_major); max_chunk: spectra per device chunk (0: automatic);
// kernel: thread or warp per fit (automatic: the backend's choice).
FitResults fit_gpu(const Problem& p, const FitOptions& o,
                   tc::SpectrumLayout layout = tc::SpectrumLayout::pixel_major,
                   std::int64_t max_chunk = 0, tc::FitKernel kernel = tc::FitKernel::automatic) {
  const bool sm = layout == tc::SpectrumLayout::sweep_major;
  const std::vector<float> y = sm ? to_sweep_major(p.y, p.n_pix, p.n_points()) : p.y;
  const std::vector<float> w = sm ? to_sweep_major(p.weights, p.n_pix, p.n_points()) : p.weights;
  FitResults r = empty_results(p);
  tc::FitInputDesc in;
  in.x = p.x.data();
  in.n_points = p.n_points();
  in.y = y.data();
  in.weights = w.empty() ? nullptr : w.data();
  in.mask = p.mask.empty() ? nullptr : p.mask.data();
  in.start = p.start.data();
  in.n_pix = p.n_pix;
  in.layout = layout;
  in.max_chunk = max_chunk;
  const tc::FitOutputDesc out{r.params.data(), r.sigma.data(), r.chi2.data(), r.state.data(),
                              r.iterations.data()};
  tc::FitConfigDesc config = to_cuda(p.spec, o);
  config.kernel = kernel;
  tc::fit_batch_cuda(to_cuda(p.spec), config, in, out);
  return r;
}

class CudaFit : public ::testing::Test {
 protected:
  void SetUp() override {
    const tc::DeviceQuery q = tc::query_devices();
    if (q.devices.empty()) GTEST_SKIP() << "no CUDA device visible (" << q.message << ")";
  }
};

class CudaFitCase : public CudaFit, public ::testing::WithParamInterface<std::string> {};

TEST_P(CudaFitCase, MatchesCpuBackend) {
  const Case c = make_case(GetParam(), 4);
  const FitResults cpu = fit_cpu(c.problem, c.options), gpu = fit_gpu(c.problem, c.options);
  EXPECT_GE(expect_consistent(c.problem, cpu, gpu, c.tol),
            std::int64_t(c.min_fitted * c.problem.n_pix));
}

// Both kernels, whichever the backend would choose for the model: one thread
// per fit and one warp per fit (cuda/fit_warp.hpp) each agree with the CPU.
TEST_P(CudaFitCase, ThreadAndWarpKernelsMatchCpuBackend) {
  const Case c = make_case(GetParam(), 2);
  const FitResults cpu = fit_cpu(c.problem, c.options);
  for (const auto kernel : {tc::FitKernel::thread_per_fit, tc::FitKernel::warp_per_fit}) {
    SCOPED_TRACE(kernel == tc::FitKernel::warp_per_fit ? "warp per fit" : "thread per fit");
    const FitResults gpu =
        fit_gpu(c.problem, c.options, tc::SpectrumLayout::pixel_major, 0, kernel);
    EXPECT_GE(expect_consistent(c.problem, cpu, gpu, c.tol),
              std::int64_t(c.min_fitted * c.problem.n_pix));
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CudaFitCase, ::testing::ValuesIn(case_names()),
                         [](const auto& info) { return info.param; });

// Pixels that cannot be fitted get the same state and NaN on both backends.
TEST_F(CudaFit, UnfittableStates) {
  const Problem p = unfittable_problem();
  const FitOptions o;
  const FitResults gpu = fit_gpu(p, o);
  expect_consistent(p, fit_cpu(p, o), gpu);
  expect_unfittable_states(p, gpu);
  const FitResults warp =
      fit_gpu(p, o, tc::SpectrumLayout::pixel_major, 0, tc::FitKernel::warp_per_fit);
  expect_consistent(p, fit_cpu(p, o), warp);
  expect_unfittable_states(p, warp);
}

// The layout of the host spectra and the chunking never change a result.
TEST_F(CudaFit, LayoutAndChunkingDoNotChangeResults) {
  Problem p = odmr(ModelKind::lorentzian, 2, true, 1000);
  p.weights.assign(p.y.size(), 2.0f);
  const FitOptions o;
  const FitResults ref = fit_gpu(p, o);
  expect_identical(ref, fit_gpu(p, o, tc::SpectrumLayout::sweep_major));
  expect_identical(ref, fit_gpu(p, o, tc::SpectrumLayout::pixel_major, 37));
  expect_identical(ref, fit_gpu(p, o, tc::SpectrumLayout::sweep_major, 129));
  const auto warp = tc::FitKernel::warp_per_fit;
  const FitResults warp_ref = fit_gpu(p, o, tc::SpectrumLayout::pixel_major, 0, warp);
  expect_identical(warp_ref, fit_gpu(p, o, tc::SpectrumLayout::sweep_major, 37, warp));
}

// A session (tessera fit's chunks) gives the results of separate calls: the
// same spectra in two calls, then a model with other sizes (new buffers), then
// the first again (buffers reused or replaced), each bit-identical to a call
// of its own.
TEST_F(CudaFit, SessionGivesTheResultsOfSeparateCalls) {
  const Problem a = odmr(ModelKind::lorentzian, 2, false, 700);
  const Problem b = odmr(ModelKind::gaussian, 8, true, 90);
  const FitOptions o;
  const FitResults ref_a = fit_gpu(a, o), ref_b = fit_gpu(b, o);
  tc::FitCudaSession session;
  auto fit_part = [&](const Problem& p, std::int64_t first, std::int64_t n, FitResults& r) {
    const int P = p.spec.n_params();
    tc::FitInputDesc in;
    in.x = p.x.data();
    in.n_points = p.n_points();
    in.y = p.y.data() + std::size_t(first) * p.n_points();
    in.start = p.start.data() + std::size_t(first) * P;
    in.n_pix = n;
    const tc::FitOutputDesc out{r.params.data() + std::size_t(first) * P,
                                r.sigma.data() + std::size_t(first) * P, r.chi2.data() + first,
                                r.state.data() + first, r.iterations.data() + first};
    session.fit(to_cuda(p.spec), to_cuda(p.spec, o), in, out);
  };
  FitResults got_a = empty_results(a), got_b = empty_results(b), again_a = empty_results(a);
  fit_part(a, 0, 400, got_a);
  fit_part(a, 400, 300, got_a);
  expect_identical(ref_a, got_a);
  fit_part(b, 0, b.n_pix, got_b);
  expect_identical(ref_b, got_b);
  fit_part(a, 0, a.n_pix, again_a);
  expect_identical(ref_a, again_a);
}

// No fit count breaks the backend (Gpufit returns zeros at 10^7 fits): 10^7 + 1
// copies of one spectrum go through the default chunk plan (several chunks on
// both streams) and every copy gets the bits of the spectrum fitted alone.
// (Batches past 2^31 values, 8 GB and more, are left to the plan's own test,
// test_fit_plan.cpp, and to 64-bit offsets.)
TEST_F(CudaFit, TenMillionFits) {
  const auto x = linspace(2840, 2900, 16);
  const ModelSpec spec = tessera::fit::make_model_spec("lorentzian", 1, "constant", x);
  const Problem one = make_problem(
      spec, x, 1, 2e-4, false,
      [](std::int64_t, std::mt19937_64&) { return std::vector<double>{1.0, 2870.0, 8.0, -0.02}; },
      [](std::vector<double> t) {
        t[1] += 0.8;
        t[2] *= 1.2;
        t[3] *= 0.8;
        return t;
      });
  const FitOptions o;
  const FitResults alone = fit_gpu(one, o);
  ASSERT_EQ(alone.state[0], 0);
  expect_consistent(one, fit_cpu(one, o), alone);

  constexpr std::int64_t n = 10'000'001;
  const int np = one.n_points(), P = spec.n_params();
  Problem big = one;
  big.n_pix = n;
  big.y.resize(std::size_t(n) * np);
  big.start.resize(std::size_t(n) * P);
  big.truth.clear();
  for (std::int64_t i = 1; i < n; ++i) {
    std::copy_n(one.y.begin(), np, big.y.begin() + i * np);
    std::copy_n(one.start.begin(), P, big.start.begin() + i * P);
  }
  const FitResults r = fit_gpu(big, o);
  std::int64_t differ = 0, first = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    bool same = r.state[std::size_t(i)] == alone.state[0] &&
                r.iterations[std::size_t(i)] == alone.iterations[0] &&
                std::memcmp(&r.chi2[std::size_t(i)], &alone.chi2[0], sizeof(float)) == 0 &&
                std::memcmp(&r.params[std::size_t(i) * P], alone.params.data(), P * sizeof(float)) == 0 &&
                std::memcmp(&r.sigma[std::size_t(i) * P], alone.sigma.data(), P * sizeof(float)) == 0;
    if (!same && first < 0) first = i;
    differ += same ? 0 : 1;
  }
  EXPECT_EQ(differ, 0) << "first differing fit: " << first;
}

// What runs without a device: argument checks come before any CUDA call.
TEST(CudaFitArguments, UnsupportedModelsAndSizes) {
  tc::FitModelDesc m;
  m.n_peaks = tc::fit_max_peaks + 1;
  EXPECT_EQ(tc::fit_n_params(m), 0);
  m.n_peaks = 8;
  m.linear_background = true;
  EXPECT_EQ(tc::fit_n_params(m), 26);
  m.kind = tc::FitModelKind::damped_cosine;
  EXPECT_EQ(tc::fit_n_params(m), 5);

  const float x[4] = {0, 1, 2, 3}, y[4] = {1, 1, 1, 1}, start[4] = {1, 1, 1, 1};
  float params[4], sigma[4], chi2[1];
  std::int32_t state[1], iterations[1];
  tc::FitInputDesc in;
  in.x = x;
  in.n_points = 4;
  in.y = y;
  in.start = start;
  in.n_pix = 1;
  const tc::FitOutputDesc out{params, sigma, chi2, state, iterations};
  tc::FitModelDesc bad;
  bad.n_peaks = 9;
  EXPECT_THROW(tc::fit_batch_cuda(bad, {}, in, out), std::invalid_argument);
  tc::FitModelDesc one_peak;  // 4 parameters, 4 points: fine; 3 points: too few
  in.n_points = 3;
  EXPECT_THROW(tc::fit_batch_cuda(one_peak, {}, in, out), std::invalid_argument);
  in.n_points = 4;
  tc::FitInputDesc no_start = in;
  no_start.start = nullptr;
  EXPECT_THROW(tc::fit_batch_cuda(one_peak, {}, no_start, out), std::invalid_argument);
  tc::FitConfigDesc mle;
  mle.estimator = tessera::core::Estimator::mle;
  tc::FitInputDesc weighted = in;
  weighted.weights = y;
  EXPECT_THROW(tc::fit_batch_cuda(one_peak, mle, weighted, out), std::invalid_argument);
}

TEST(CudaDeviceInfo, QueryNeverFails) {
  const tc::DeviceQuery q = tc::query_devices();
  EXPECT_EQ(int(q.devices.size()), tc::device_count());
  if (q.devices.empty()) {
    EXPECT_FALSE(q.message.empty());
  }
  for (const tc::DeviceInfo& d : q.devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.major, 1);
  }
  EXPECT_GT(q.runtime_version, 0);
  EXPECT_STRNE(tc::compiled_architectures(), "");
}

}  // namespace

// Models of the user's own on the GPU (cuda/user_kernels.hpp): NVRTC compiles
// the generated CUDA source of every shipped model and of an expression to PTX
// with both kernels (no device needed: this runs everywhere), the GPU source
// holds the very model struct the CPU engine runs (which the CPU tests check
// against the built-in models), NVRTC's errors come as one line, and, where a
// device is visible, a GPU fit agrees with the CPU's. The GPU test skips, and
// says so, when no device is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/fit.hpp"
#include "cuda/device_info.hpp"
#include "cuda/user_kernels.hpp"
#include "fit/expr_model.hpp"
#include "fit/model_file.hpp"
#include "fit/user_model.hpp"

namespace fit = tessera::fit;
namespace tc = tessera::cuda;

namespace {

const std::string two_lorentzians =
    "offset + amp0 / (1 + ((x - pos0) / (fwhm0 / 2))^2) + amp1 / (1 + ((x - pos1) / (fwhm1 / 2))^2)";

std::vector<fit::ExprSource> corpus() {
  std::vector<fit::ExprSource> all;
  for (const auto& name : fit::shipped_models()) all.push_back(fit::load_model_file(fit::find_model(name)).source);
  all.push_back({two_lorentzians, {"offset", "pos0", "fwhm0", "amp0", "pos1", "fwhm1", "amp1"}, {}});
  all.push_back({"offset + amp * exp(-(x / t1)^beta) + erf(x / t1) * min(amp, 0) + atan(tanh(sqrt(abs(x))))",
                 {"offset", "amp", "t1", "beta"},
                 {}});
  return all;
}

TEST(UserKernels, NvrtcCompilesEveryShippedModelWithBothKernels) {
  ASSERT_FALSE(tc::nvrtc_version().empty());
  for (const auto& src : corpus()) {
    const fit::ExprModel model(src);
    const std::string cuda = fit::user_model_cuda_source(model);
    // The struct the GPU compiles is the one the CPU engine runs.
    const std::string body = model.cpp_struct("UserModel");
    EXPECT_NE(cuda.find(body), std::string::npos) << src.expr;
    EXPECT_NE(fit::user_model_source(model).find(body), std::string::npos) << src.expr;
    const std::string ptx = tc::nvrtc_compile(cuda, "compute_80");
    EXPECT_NE(ptx.find(std::string(".entry ") + tc::user_thread_kernel_name), std::string::npos) << src.expr;
    EXPECT_NE(ptx.find(std::string(".entry ") + tc::user_warp_kernel_name), std::string::npos) << src.expr;
  }
}

TEST(UserKernels, CompileErrorsAreOneLine) {
  const std::string bad = "#include \"cuda/user_kernels.cuh\"\nstruct UserModel { static constexpr int n_params = ; };\n";
  try {
    (void)tc::nvrtc_compile(bad, "compute_80");
    FAIL() << "a broken source compiled";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find("NVRTC"), std::string::npos) << what;
    EXPECT_NE(what.find("error"), std::string::npos) << what;
  }
}

TEST(UserKernels, GpuFitAgreesWithTheCpu) {
  if (tc::query_devices().devices.empty()) GTEST_SKIP() << "no CUDA device visible";
  std::vector<float> x, y;
  for (int i = 0; i < 100; ++i) x.push_back(2800.0f + 1.5f * float(i));
  const int n_fits = 4000;
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 2e-3);
  for (int p = 0; p < n_fits; ++p) {
    const double c0 = 2850 + 10.0 * p / n_fits, c1 = 2900 - 8.0 * p / n_fits;
    for (float xv : x) {
      const double u0 = (xv - c0) / 4.5, u1 = (xv - c1) / 5.0;
      y.push_back(float(1 - 0.01 / (1 + u0 * u0) - 0.012 / (1 + u1 * u1) + noise(rng)));
    }
  }
  tessera::api::FitOptions o;
  o.expr = two_lorentzians;
  o.params = {"offset", "pos0", "fwhm0", "amp0", "pos1", "fwhm1", "amp1"};
  o.start = {{"offset", 1}, {"pos0", 2850}, {"fwhm0", 9}, {"amp0", -0.01}, {"pos1", 2900}, {"fwhm1", 9}, {"amp1", -0.01}};
  const auto spectra = tessera::api::Array2::contiguous(y.data(), {n_fits, 100});
  const auto sweep = tessera::api::Array1::contiguous(x.data(), {100});
  o.backend = "cpu";
  const auto cpu = tessera::api::fit_spectra(spectra, sweep, o);
  o.backend = "cuda";
  const auto gpu = tessera::api::fit_spectra(spectra, sweep, o);
  ASSERT_EQ(gpu.backend, "cuda");
  int agree = 0;
  for (int p = 0; p < n_fits; ++p) {
    if (cpu.state[std::size_t(p)] != gpu.state[std::size_t(p)] || cpu.state[std::size_t(p)] != 0) continue;
    bool same = true;
    for (std::size_t j = 0; j < o.params.size(); ++j) {
      const float a = cpu.params[j][std::size_t(p)], b = gpu.params[j][std::size_t(p)];
      same &= std::fabs(a - b) <= std::max(1e-4f * std::fabs(a), 0.2f * cpu.sigma[j][std::size_t(p)]);
    }
    agree += same;
  }
  EXPECT_GE(agree, int(0.99 * n_fits));
}

}  // namespace

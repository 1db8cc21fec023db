// The library's fit (src/api/fit.hpp) against `tessera fit`: the same cube and
// options in memory give the command's maps bit for bit; any element type and
// layout of the same values gives the same bits; bad options and input get one
// clear message; cancel and progress work.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <random>

#include "api/fit.hpp"
#include "api_test_util.hpp"

namespace api = tessera::api;
using tessera::test::read_dataset;
using tessera::test::run_tessera;
using tessera::test::same_bits;

namespace {

// A cube as the command reads it: [n_sweep, ny, nx] float and the sweep.
struct Cube {
  std::vector<float> data, sig, ref;
  std::vector<double> sweep;
  std::int64_t n = 0, ny = 0, nx = 0;
  api::Array3 view(const std::vector<float>& d) const { return api::Array3::contiguous(d.data(), {n, ny, nx}); }
  api::Array1 sweep_view() const { return api::Array1::contiguous(sweep.data(), {n}); }
};

Cube load(const std::string& file, bool photons = false) {
  Cube c;
  std::vector<std::int64_t> shape;
  c.data = read_dataset<float>(file, "/data", &shape);
  c.n = shape[0], c.ny = shape[1], c.nx = shape[2];
  c.sweep = read_dataset<double>(file, "/sweep");
  if (photons) {
    c.sig = read_dataset<float>(file, "/sig");
    c.ref = read_dataset<float>(file, "/ref");
  }
  return c;
}

api::FitInput input(const api::Array3& data, const api::Array1& sweep, const api::Array3& ref = {},
                    const api::Array2& mask = {}) {
  api::FitInput in;
  in.data = data;
  in.ref = ref;
  in.sweep = sweep;
  in.mask = mask;
  return in;
}

// Every map of the command's output equals the library's result, bit for bit.
void expect_same_as_command(const api::FitResult& r, const std::string& out) {
  std::vector<std::int64_t> shape;
  const auto chi2 = read_dataset<float>(out, "/chi2", &shape);
  ASSERT_EQ(shape, (std::vector<std::int64_t>{r.ny, r.nx}));
  EXPECT_TRUE(same_bits(r.chi2, chi2));
  EXPECT_TRUE(same_bits(r.state, read_dataset<std::int32_t>(out, "/state")));
  EXPECT_TRUE(same_bits(r.iterations, read_dataset<std::int32_t>(out, "/iterations")));
  for (std::size_t j = 0; j < r.param_names.size(); ++j) {
    EXPECT_TRUE(same_bits(r.params[j], read_dataset<float>(out, "/params/" + r.param_names[j])))
        << r.param_names[j];
    EXPECT_TRUE(same_bits(r.sigma[j], read_dataset<float>(out, "/sigma/" + r.param_names[j])))
        << r.param_names[j];
  }
  for (std::size_t k = 0; k < r.derived_names.size(); ++k)
    EXPECT_TRUE(same_bits(r.derived[k], read_dataset<float>(out, "/derived/" + r.derived_names[k])))
        << r.derived_names[k];
}

class ApiFit : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = tessera::test::scratch_dir("fit");
    setenv("TESSERA_CACHE", (dir_ + "/cache").c_str(), 1);  // models of one's own compile here
    ASSERT_EQ(run_tessera("simulate odmr -o " + dir_ + "/o8.h5 --size 14x18 --peaks 8 --seed 3"), 0);
    ASSERT_EQ(run_tessera("simulate odmr -o " + dir_ + "/o2.h5 --size 20x16 --peaks 2 --seed 4 "
                          "--bad-fraction 0.03"),
              0);
    ASSERT_EQ(run_tessera("simulate odmr -o " + dir_ + "/ph.h5 --size 16x20 --peaks 2 --photons 20000 --seed 5"), 0);
    ASSERT_EQ(run_tessera("simulate t1 -o " + dir_ + "/t1.h5 --size 10x12 --seed 6"), 0);
  }
  static void TearDownTestSuite() { tessera::test::remove_scratch_dir(dir_); }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static std::string dir_;
};
std::string ApiFit::dir_;

TEST_F(ApiFit, EightPeakCubeEqualsTheCommand) {
  ASSERT_EQ(run_tessera("fit " + path("o8.h5") + " -o " + path("o8_fit.h5") + " --peaks 8 --quiet --force"), 0);
  const Cube c = load(path("o8.h5"));
  api::FitOptions o;
  o.peaks = 8;
  const api::FitResult r = api::fit_cube(input(c.view(c.data), c.sweep_view()), o);
  EXPECT_EQ(r.derived_names, (std::vector<std::string>{"bnv0", "bnv1", "bnv2", "bnv3"}));
  EXPECT_EQ(r.backend, "cpu");
  expect_same_as_command(r, path("o8_fit.h5"));
  // Not a vacuous equality: most pixels of this cube converge near the truth.
  const auto truth = read_dataset<float>(path("o8.h5"), "/truth/pos0");
  const auto& pos0 = r.param("pos0");
  int close = 0;
  for (std::size_t p = 0; p < pos0.size(); ++p) close += std::abs(pos0[p] - truth[p]) < 2;
  EXPECT_GT(close, int(0.9 * double(pos0.size())));
}

TEST_F(ApiFit, ConstraintsAndGaussianEqualTheCommand) {
  ASSERT_EQ(run_tessera("fit " + path("o2.h5") + " -o " + path("o2_fit.h5") +
                        " --model gaussian --background linear --fix fwhm0=9 --bound pos1=2870:2990"
                        " --roi 1:19,2:15 --quiet --force"),
            0);
  const Cube c = load(path("o2.h5"));
  api::FitOptions o;
  o.model = "gaussian";
  o.background = "linear";
  o.fix = {{"fwhm0", 9.0}};
  o.bounds = {{"pos1", {2870, 2990}}};
  o.roi = {1, 19, 2, 15};
  const api::FitResult r = api::fit_cube(input(c.view(c.data), c.sweep_view()), o);
  EXPECT_EQ(r.ny, 18);
  EXPECT_EQ(r.nx, 13);
  expect_same_as_command(r, path("o2_fit.h5"));
  for (std::size_t p = 0; p < r.state.size(); ++p)
    if (r.state[p] == 0) {
      EXPECT_EQ(r.param("fwhm0")[p], 9.0f);
    }
}

TEST_F(ApiFit, PhotonFramesBinnedMaskedMleEqualTheCommand) {
  // A mask dataset in the input file for the command, the same array in memory.
  const Cube c = load(path("ph.h5"), true);
  std::vector<float> mask(std::size_t(c.ny * c.nx), 0);
  for (std::size_t i = 0; i < mask.size(); i += 7) mask[i] = 1;
  tessera::test::write_dataset(path("ph.h5"), "/mask", mask, {c.ny, c.nx});
  ASSERT_EQ(run_tessera("fit " + path("ph.h5") + " -o " + path("ph_fit.h5") +
                        " --sig /sig --ref /ref --bin 2 --roi 0:16,1:19 --mask /mask --estimator mle --quiet --force"),
            0);
  api::FitOptions o;
  o.bin = 2;
  o.roi = {0, 16, 1, 19};
  o.estimator = "mle";
  const api::FitResult r = api::fit_cube(
      input(c.view(c.sig), c.sweep_view(), c.view(c.ref), api::Array2::contiguous(mask.data(), {c.ny, c.nx})),
      o);
  expect_same_as_command(r, path("ph_fit.h5"));
  EXPECT_GT(r.state_counts[std::size_t(tessera::core::FitState::masked)], 0);
}

TEST_F(ApiFit, StartsFromAPreviousFitEqualTheCommand) {
  ASSERT_EQ(run_tessera("fit " + path("t1.h5") + " -o " + path("t1_a.h5") + " --model stretched_exp --quiet --force"), 0);
  ASSERT_EQ(run_tessera("fit " + path("t1.h5") + " -o " + path("t1_b.h5") + " --model stretched_exp --guess " +
                        path("t1_a.h5") + " --tol 1e-8 --quiet --force"),
            0);
  const Cube c = load(path("t1.h5"));
  api::FitOptions o;
  o.model = "stretched_exp";
  o.tol = 1e-8;
  api::FitInput in = input(c.view(c.data), c.sweep_view());
  std::vector<std::vector<float>> maps;
  for (const char* n : {"offset", "amp", "t1", "beta"}) maps.push_back(read_dataset<float>(path("t1_a.h5"), std::string("/params/") + n));
  for (const auto& m : maps) in.start.push_back(api::Array2::contiguous(m.data(), {c.ny, c.nx}));
  expect_same_as_command(api::fit_cube(in, o), path("t1_b.h5"));
}

TEST_F(ApiFit, AnyTypeAndLayoutOfTheSameValuesGivesTheSameBits) {
  const Cube c = load(path("o2.h5"));
  api::FitOptions o;
  const api::FitResult ref = api::fit_cube(input(c.view(c.data), c.sweep_view()), o);
  // float64 holds every float32 exactly.
  const std::vector<double> as_double(c.data.begin(), c.data.end());
  const api::FitResult d = api::fit_cube(
      input(api::Array3::contiguous(as_double.data(), {c.n, c.ny, c.nx}), c.sweep_view()), o);
  EXPECT_TRUE(same_bits(ref.param("pos0"), d.param("pos0")));
  EXPECT_TRUE(same_bits(ref.sigma[3], d.sigma[3]));
  EXPECT_TRUE(same_bits(ref.chi2, d.chi2));
  // The cube stored pixel-major [ny, nx, n_sweep], viewed through strides.
  std::vector<float> yxs(c.data.size());
  for (std::int64_t i = 0; i < c.n; ++i)
    for (std::int64_t p = 0; p < c.ny * c.nx; ++p) yxs[std::size_t(p * c.n + i)] = c.data[std::size_t(i * c.ny * c.nx + p)];
  api::Array3 v;
  v.data = yxs.data();
  v.type = api::DType::float32;
  v.shape = {c.n, c.ny, c.nx};
  v.strides = {4, 4 * c.nx * c.n, 4 * c.n};
  const api::FitResult s = api::fit_cube(input(v, c.sweep_view()), o);
  EXPECT_TRUE(same_bits(ref.param("pos1"), s.param("pos1")));
  EXPECT_TRUE(same_bits(ref.state, s.state));
  EXPECT_TRUE(same_bits(ref.iterations, s.iterations));
}

TEST_F(ApiFit, IntegerCountsEqualTheirFloatValues) {
  const Cube c = load(path("ph.h5"), true);
  std::vector<std::uint16_t> sig(c.sig.size()), ref(c.ref.size());
  std::vector<float> sig_f(c.sig.size()), ref_f(c.ref.size());
  for (std::size_t i = 0; i < sig.size(); ++i) {
    sig[i] = std::uint16_t(std::min(65535.f, c.sig[i] / 2));
    ref[i] = std::uint16_t(std::min(65535.f, c.ref[i] / 2));
    sig_f[i] = sig[i];
    ref_f[i] = ref[i];
  }
  api::FitOptions o;
  const auto a = api::fit_cube(input(api::Array3::contiguous(sig.data(), {c.n, c.ny, c.nx}), c.sweep_view(),
                                     api::Array3::contiguous(ref.data(), {c.n, c.ny, c.nx})),
                               o);
  const auto b = api::fit_cube(input(c.view(sig_f), c.sweep_view(), c.view(ref_f)), o);
  EXPECT_TRUE(same_bits(a.param("pos0"), b.param("pos0")));
  EXPECT_TRUE(same_bits(a.chi2, b.chi2));
}

TEST_F(ApiFit, SpectraAreACubeOfOneRow) {
  const Cube c = load(path("o2.h5"));
  const std::int64_t n_fits = c.ny * c.nx;
  std::vector<float> spectra(c.data.size());  // [n_fits, n_sweep]
  for (std::int64_t i = 0; i < c.n; ++i)
    for (std::int64_t p = 0; p < n_fits; ++p) spectra[std::size_t(p * c.n + i)] = c.data[std::size_t(i * n_fits + p)];
  api::FitOptions o;
  const auto s = api::fit_spectra(api::Array2::contiguous(spectra.data(), {n_fits, c.n}), c.sweep_view(), o);
  ASSERT_EQ(s.ny, 1);
  ASSERT_EQ(s.nx, n_fits);
  const auto r = api::fit_cube(input(api::Array3::contiguous(c.data.data(), {c.n, 1, n_fits}), c.sweep_view()), o);
  EXPECT_TRUE(same_bits(s.param("pos0"), r.param("pos0")));
  EXPECT_TRUE(same_bits(s.state, r.state));
  // Dead pixels (all zero) are reported as such, not fitted.
  EXPECT_GT(s.state_counts[std::size_t(tessera::core::FitState::nonfinite_input)], 0);
}

TEST_F(ApiFit, ProgressCountsEveryPixelAndCancelStops) {
  const Cube c = load(path("o2.h5"));
  api::FitOptions o;
  std::atomic<std::int64_t> done{0};
  o.progress = [&](std::int64_t n) { done += n; };
  const auto r = api::fit_cube(input(c.view(c.data), c.sweep_view()), o);
  EXPECT_EQ(done.load(), r.ny * r.nx);
  std::atomic<bool> cancel{true};
  o.cancel = &cancel;
  EXPECT_THROW(api::fit_cube(input(c.view(c.data), c.sweep_view()), o), api::Cancelled);
}

TEST_F(ApiFit, DerivedUncertaintiesFollowTheFullCovariance) {
  // 3000 noisy decays of one truth: offset and amp are strongly anticorrelated,
  // so the uncertainty of offset + amp (the value at x = 0) is far below what
  // their sigmas alone would give; the derived sigma must match the observed
  // spread of the derived value.
  const int n = 40, fits = 3000;
  std::vector<double> x(n);
  for (int i = 0; i < n; ++i) x[std::size_t(i)] = 5.0 + 10.0 * i;  // the decay's first 1.3 tau
  std::mt19937 rng(9);
  std::normal_distribution<double> noise(0, 0.01);
  std::vector<float> y(std::size_t(fits) * n);
  for (int f = 0; f < fits; ++f)
    for (int i = 0; i < n; ++i)
      y[std::size_t(f) * n + i] = float(0.2 + 0.8 * std::exp(-x[std::size_t(i)] / 300.0) + noise(rng));
  api::FitOptions o;
  o.expr = "offset + amp * exp(-x / tau)";
  o.params = {"offset", "amp", "tau"};
  o.start = {{"offset", 0.15}, {"amp", 0.9}, {"tau", 250}};
  o.derive = {{"total", "offset + amp"}};
  const auto r = api::fit_spectra(api::Array2::contiguous(y.data(), {fits, n}), api::Array1::contiguous(x.data(), {n}), o);
  ASSERT_EQ(r.derived_names, std::vector<std::string>{"total"});
  ASSERT_EQ(r.derived_sigma.size(), 1u);
  std::vector<double> total, sigma, naive;
  for (int f = 0; f < fits; ++f) {
    if (r.state[std::size_t(f)] != 0) continue;
    total.push_back(r.derived[0][std::size_t(f)]);
    EXPECT_FLOAT_EQ(r.derived[0][std::size_t(f)], r.param("offset")[std::size_t(f)] + r.param("amp")[std::size_t(f)]);
    sigma.push_back(r.derived_sigma[0][std::size_t(f)]);
    naive.push_back(std::hypot(r.sigma[0][std::size_t(f)], r.sigma[1][std::size_t(f)]));
  }
  ASSERT_GT(total.size(), std::size_t(0.99 * fits));
  const double mean = std::accumulate(total.begin(), total.end(), 0.0) / double(total.size());
  double var = 0;
  for (double t : total) var += (t - mean) * (t - mean);
  const double spread = std::sqrt(var / double(total.size() - 1));
  std::nth_element(sigma.begin(), sigma.begin() + std::ptrdiff_t(sigma.size() / 2), sigma.end());
  std::nth_element(naive.begin(), naive.begin() + std::ptrdiff_t(naive.size() / 2), naive.end());
  const double med = sigma[sigma.size() / 2], med_naive = naive[naive.size() / 2];
  EXPECT_NEAR(med / spread, 1.0, 0.10) << "derived sigma " << med << ", observed spread " << spread;
  EXPECT_GT(med_naive / spread, 1.3) << "the case does not tell covariance from none";
}

TEST_F(ApiFit, BuiltInFieldMapsHaveTheirUncertainty) {
  const Cube c = load(path("o8.h5"));
  api::FitOptions o;
  o.peaks = 8;
  const api::FitResult r = api::fit_cube(input(c.view(c.data), c.sweep_view()), o);
  ASSERT_EQ(r.derived_sigma.size(), 4u);
  // bnv0 = (pos7 - pos0) / (2 gamma): its variance is (var7 + var0 - 2 cov07) / (2 gamma)^2,
  // and for these well-separated lines cov07 is small: close to the sum of squares.
  for (std::size_t p = 0; p < r.state.size(); ++p) {
    if (r.state[p] != 0) continue;
    const double naive = std::hypot(r.sigma[1][p], r.sigma[22][p]) / (2 * 28.024);
    EXPECT_NEAR(r.derived_sigma[0][p], naive, 0.05 * naive) << "pixel " << p;
  }
}

// The message of fit_cube's std::invalid_argument, or "" when it returns.
std::string fit_error(const api::FitInput& in, const api::FitOptions& o) {
  try {
    (void)api::fit_cube(in, o);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST_F(ApiFit, OptionsAreCheckedWithAMessage) {
  auto why = [](auto change) {
    api::FitOptions o;
    change(o);
    std::string m;
    EXPECT_FALSE(o.IsValid(&m));
    return m;
  };
  EXPECT_EQ(why([](auto& o) { o.backend = "gpu"; }), "--backend must be auto, cpu or cuda, got 'gpu'");
  EXPECT_EQ(why([](auto& o) { o.estimator = "ml"; }), "--estimator must be lse or mle, got 'ml'");
  EXPECT_EQ(why([](auto& o) { o.gpu_kernel = "block"; }), "--gpu-kernel must be auto, thread or warp, got 'block'");
  EXPECT_EQ(why([](auto& o) { o.params = {"a"}; }),
            "--params, --const, --start and --derive describe a model of your own: give it with --expr, "
            "--model-file or a shipped --model");
  EXPECT_EQ(why([](auto& o) {
              o.expr = "a * x";
              o.model_file = "m.model";
            }),
            "--expr and --model-file: give one model");
  EXPECT_EQ(why([](auto& o) { o.peaks = 9; }), "--peaks must be between 1 and 8, got 9");
  EXPECT_EQ(why([](auto& o) { o.bin = 0; }), "--bin must be at least 1");
  EXPECT_EQ(why([](auto& o) { o.tol = 0; }), "--tol must be in (0, 1)");
  EXPECT_EQ(why([](auto& o) { o.max_iter = 0; }), "--max-iter must be at least 1");
  std::string m;
  EXPECT_TRUE(api::FitOptions{}.IsValid(&m));
  EXPECT_EQ(m, "");
}

TEST_F(ApiFit, BadInputGetsOneClearMessage) {
  const Cube c = load(path("o2.h5"));
  const api::FitInput good = input(c.view(c.data), c.sweep_view());
  api::FitOptions o;
  o.fix = {{"width", 1.0}};
  EXPECT_EQ(fit_error(good, o),
            "--fix: unknown parameter 'width' (this model has offset, pos0, fwhm0, amp0, pos1, fwhm1, amp1)");
  o = {};
  o.model = "voigt";  // neither built in nor a shipped model file
  EXPECT_EQ(fit_error(good, o).rfind("unknown model 'voigt' (choose lorentzian, gaussian, stretched_exp, "
                                     "damped_cosine; shipped: esr14n, esr14n_pair",
                                     0),
            0u);
  o = {};
  o.roi = {0, 100, 0, 4};
  EXPECT_EQ(fit_error(good, o), "--roi 0:100,0:4 is empty or outside the image (20 x 16)");
  o = {};
  o.fix = {{"offset", 1}, {"pos0", 2870}, {"fwhm0", 9}, {"amp0", 0}, {"pos1", 2900}, {"fwhm1", 9}, {"amp1", 0}};
  EXPECT_EQ(fit_error(good, o), "every parameter is fixed: nothing to fit");
  o = {};
  api::FitInput in = good;
  in.sweep.shape[0] = c.n - 1;
  EXPECT_NE(fit_error(in, o).find("the sweep has " + std::to_string(c.n - 1) + " values"), std::string::npos);
  std::vector<double> bad_sweep = c.sweep;
  bad_sweep[5] = NAN;
  in = good;
  in.sweep = api::Array1::contiguous(bad_sweep.data(), {c.n});
  EXPECT_EQ(fit_error(in, o), "the sweep holds a non-finite value");
  in = good;
  in.ref = api::Array3::contiguous(c.data.data(), {c.n, c.ny - 1, c.nx});
  EXPECT_EQ(fit_error(in, o), "ref differs in shape from the data");
  in = good;
  std::vector<float> mask(std::size_t(c.ny * c.nx));
  in.mask = api::Array2::contiguous(mask.data(), {c.ny, c.nx + 1});
  EXPECT_EQ(fit_error(in, o), "the mask must be 20 x 16 like the image");
  in = good;
  in.start = {api::Array2::contiguous(mask.data(), {c.ny, c.nx})};
  EXPECT_EQ(fit_error(in, o), "start: 1 maps for 7 parameters");
  std::vector<float> zeros(c.data.size(), 0.f);
  EXPECT_EQ(fit_error(input(c.view(zeros), c.sweep_view()), o),
            "the cube has no pixel with finite, non-zero data");
  o.backend = "cuda";
  if (!tessera::test::cuda_device_visible()) {  // with a device, it would fit
    EXPECT_EQ(fit_error(good, o).rfind("--backend cuda: ", 0), 0u);
  }
}

}  // namespace

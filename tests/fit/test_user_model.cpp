// Models of the user's own, compiled at run time into the batch engine
// (src/fit/user_model.hpp): the model cache, the fit of built-in models
// written as expressions against the built-in models on the same spectra,
// and the model's bad inputs. The compiler runs for real (the cache is a
// fresh directory per test process).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "fit/batch.hpp"
#include "fit/guess.hpp"
#include "fit/model_spec.hpp"
#include "fit/model_file.hpp"
#include "fit/user_model.hpp"

namespace fit = tessera::fit;

namespace {

class UserModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cache_ = (std::filesystem::current_path() / ("model_cache_" + std::to_string(getpid()))).string();
    std::filesystem::remove_all(cache_);
    setenv("TESSERA_CACHE", cache_.c_str(), 1);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(cache_); }
  static std::string cache_;
};
std::string UserModel::cache_;

const std::string two_lorentzians =
    "offset + amp0 / (1 + ((x - pos0) / (fwhm0 / 2))^2) + amp1 / (1 + ((x - pos1) / (fwhm1 / 2))^2)";
const std::vector<std::string> two_names = {"offset", "pos0", "fwhm0", "amp0", "pos1", "fwhm1", "amp1"};

// Noisy 2-dip spectra on 100 points with the dips moving across the batch.
struct Spectra {
  std::vector<float> x, y;
  std::int64_t n = 0;
};
Spectra two_dip_spectra(int n_pix) {
  Spectra s;
  for (int i = 0; i < 100; ++i) s.x.push_back(2800.0f + 1.5f * float(i));
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0, 2e-3);
  for (int p = 0; p < n_pix; ++p) {
    const double c0 = 2850 + 10.0 * p / n_pix, c1 = 2900 - 8.0 * p / n_pix;
    for (float xv : s.x) {
      const double u0 = (xv - c0) / 4.5, u1 = (xv - c1) / 5.0;
      s.y.push_back(float(1 - 0.01 / (1 + u0 * u0) - 0.012 / (1 + u1 * u1) + noise(rng)));
    }
  }
  s.n = n_pix;
  return s;
}

TEST_F(UserModel, CompiledOnceThenTakenFromTheCache) {
  const fit::ExprSource src{two_lorentzians, two_names, {}};
  const std::vector<double> start{1, 2850, 9, -0.01, 2900, 9, -0.01};
  const fit::CompiledModel first(src, start);
  EXPECT_TRUE(first.compiled_now());
  EXPECT_TRUE(first.model().additive_offset());
  ASSERT_TRUE(std::filesystem::exists(first.object_path()));
  // The generated source is kept beside the object, readable.
  std::string cpp = first.object_path();
  cpp.replace(cpp.size() - 3, 3, ".cpp");
  std::ifstream in(cpp);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("struct UserModel"), std::string::npos);
  EXPECT_NE(text.find(two_lorentzians), std::string::npos);
  const fit::CompiledModel second(src, start);
  EXPECT_FALSE(second.compiled_now());
  EXPECT_EQ(second.object_path(), first.object_path());
  // Another constant is another model.
  const fit::CompiledModel other({"offset + a * exp(-x / t) + k", {"offset", "a", "t"}, {{"k", 0.5}}}, {0, 1, 2});
  EXPECT_TRUE(other.compiled_now());
  EXPECT_NE(other.object_path(), first.object_path());
}

// Fits the same spectra from the same start with a built-in model and with
// the same model written as an expression: the same states, parameters to
// float precision (1e-5 relative or 2 % of a sigma), the same sigmas and
// chi-squares to 1e-2 and 1e-3.
void expect_same_fits(const fit::ModelSpec& builtin, const fit::ExprSource& src, const Spectra& s,
                      const std::vector<double>& start_values, int min_converged) {
  const auto user = std::make_shared<const fit::CompiledModel>(src, start_values);
  const fit::ModelSpec mine = fit::expression_spec(user);
  ASSERT_EQ(mine.param_names(), builtin.param_names());
  const int P = builtin.n_params();
  std::vector<float> start(std::size_t(s.n) * std::size_t(P));
  for (std::int64_t p = 0; p < s.n; ++p)
    for (int j = 0; j < P; ++j) start[std::size_t(p * P + j)] = float(start_values[std::size_t(j)]);
  const fit::FitBatch batch{s.x, s.y.data(), nullptr, nullptr, start.data(), s.n};
  // Fitted to the end (a tight tolerance), so that what differs is the
  // arithmetic of the two models and not where the iterations stopped.
  fit::FitOptions o;
  o.tol = 1e-9;
  o.max_iter = 200;
  const fit::FitResults a = fit::fit_batch(builtin, batch, o);
  const fit::FitResults b = fit::fit_batch(mine, batch, o);
  int converged = 0;
  for (std::int64_t p = 0; p < s.n; ++p) {
    ASSERT_EQ(a.state[std::size_t(p)], b.state[std::size_t(p)]) << src.expr << ": pixel " << p;
    if (a.state[std::size_t(p)] != 0) continue;
    ++converged;
    for (int j = 0; j < P; ++j) {
      const float pa = a.params[std::size_t(p * P + j)], pb = b.params[std::size_t(p * P + j)];
      const float sa = a.sigma[std::size_t(p * P + j)];
      EXPECT_LE(std::fabs(pa - pb), std::max(1e-5f * std::fabs(pa), 0.02f * sa))
          << src.expr << ": pixel " << p << " param " << j;
      EXPECT_NEAR(b.sigma[std::size_t(p * P + j)], sa, 0.01f * sa) << src.expr << ": pixel " << p << " param " << j;
    }
    EXPECT_NEAR(a.chi2[std::size_t(p)], b.chi2[std::size_t(p)], 1e-3f * a.chi2[std::size_t(p)]);
  }
  EXPECT_GE(converged, min_converged) << src.expr;
}

// Noisy spectra of f(x, pixel) on the sweep x.
template <class F>
Spectra spectra_of(std::vector<float> x, int n_pix, double noise, unsigned seed, F f) {
  Spectra s;
  s.x = std::move(x);
  std::mt19937 rng(seed);
  std::normal_distribution<double> e(0, noise);
  for (int p = 0; p < n_pix; ++p)
    for (float xv : s.x) s.y.push_back(float(f(double(xv), double(p) / n_pix) + e(rng)));
  s.n = n_pix;
  return s;
}

TEST_F(UserModel, TwoLorentziansAsAnExpressionFitLikeTheBuiltInModel) {
  const Spectra s = two_dip_spectra(200);
  expect_same_fits(fit::make_model_spec("lorentzian", 2, "constant", s.x), {two_lorentzians, two_names, {}}, s,
                   {1, 2850, 9, -0.01, 2900, 9, -0.01}, 190);
}

TEST_F(UserModel, EveryBuiltInModelAsAnExpressionFitsLikeIt) {
  std::vector<float> sweep;
  for (int i = 0; i < 100; ++i) sweep.push_back(2800.0f + 1.5f * float(i));
  // Two Gaussian dips on a sloped background (slope about the sweep's middle).
  const fit::ModelSpec gauss = fit::make_model_spec("gaussian", 2, "linear", sweep);
  const double mid = gauss.x_mid, ln2 = 0.69314718055994530942;
  const Spectra g = spectra_of(sweep, 150, 2e-3, 21, [&](double x, double t) {
    const double u0 = (x - 2850 - 10 * t) / 9, u1 = (x - 2900 + 8 * t) / 11;
    return 1 + 2e-4 * (x - mid) - 0.01 * std::exp(-4 * ln2 * u0 * u0) - 0.012 * std::exp(-4 * ln2 * u1 * u1);
  });
  expect_same_fits(gauss,
                   {"offset + slope * (x - xm) + amp0 * exp(-4 * ln2 * ((x - pos0) / fwhm0)^2)"
                    " + amp1 * exp(-4 * ln2 * ((x - pos1) / fwhm1)^2)",
                    gauss.param_names(),
                    {{"xm", mid}, {"ln2", ln2}}},
                   g, {1, 0, 2852, 10, -0.01, 2898, 10, -0.01}, 140);

  // A stretched exponential (T1).
  std::vector<float> delays;
  for (int i = 0; i < 60; ++i) delays.push_back(5.0f + 50.0f * float(i));
  const Spectra t1 = spectra_of(delays, 150, 3e-3, 22, [](double x, double t) {
    return 0.1 + 0.9 * std::exp(-std::pow(x / (300 + 400 * t), 0.7 + 0.3 * t));
  });
  expect_same_fits(fit::make_model_spec("stretched_exp", 0, "constant", delays),
                   {"offset + amp * exp(-(x / t1)^beta)", {"offset", "amp", "t1", "beta"}, {}}, t1,
                   {0.1, 0.9, 500, 0.85}, 140);

  // A damped cosine (Rabi).
  std::vector<float> times;
  for (int i = 0; i < 120; ++i) times.push_back(2.0f * float(i));
  const double pi = 3.14159265358979323846;
  const Spectra rabi = spectra_of(times, 150, 3e-3, 23, [&](double x, double t) {
    return 0.5 + 0.3 * std::exp(-x / (120 + 60 * t)) * std::cos(2 * pi * (0.02 + 0.004 * t) * x + 0.2);
  });
  expect_same_fits(fit::make_model_spec("damped_cosine", 0, "constant", times),
                   {"offset + amp * exp(-x / tau) * cos(2 * pi * freq * x + phase)",
                    {"offset", "amp", "tau", "freq", "phase"},
                    {{"pi", pi}}},
                   rabi, {0.5, 0.3, 150, 0.022, 0.2}, 140);
}

TEST_F(UserModel, CovarianceAtTheFittedParametersIsTheFitsOwn) {
  // What a GPU fit's derived maps get (covariance_at, on the CPU at the
  // fitted parameters) against the covariance the CPU fit returns, for the
  // built-in model and the same model as an expression.
  const Spectra s = two_dip_spectra(120);
  const auto user = std::make_shared<const fit::CompiledModel>(
      fit::ExprSource{two_lorentzians, two_names, {}}, std::vector<double>{1, 2850, 9, -0.01, 2900, 9, -0.01});
  for (const fit::ModelSpec& spec : {fit::make_model_spec("lorentzian", 2, "constant", s.x), fit::expression_spec(user)}) {
    std::vector<float> start;
    for (std::int64_t p = 0; p < s.n; ++p) start.insert(start.end(), {1, 2850, 9, -0.01f, 2900, 9, -0.01f});
    fit::FitOptions o;
    o.covariance = true;
    const fit::FitResults r = fit::fit_batch(spec, {s.x, s.y.data(), nullptr, nullptr, start.data(), s.n}, o);
    const auto cov = fit::covariance_at(spec, {s.x, s.y.data(), nullptr, nullptr, r.params.data(), s.n},
                                        r.state.data(), o);
    ASSERT_EQ(cov.size(), r.covariance.size());
    const int nc = 7 * 8 / 2;
    int compared = 0;
    for (std::int64_t p = 0; p < s.n; ++p) {
      if (r.state[std::size_t(p)] != 0) {
        EXPECT_TRUE(std::isnan(cov[std::size_t(p * nc)])) << "pixel " << p;
        continue;
      }
      ++compared;
      for (int i = 0; i < 7; ++i)
        for (int j = 0; j <= i; ++j) {
          const std::size_t k = std::size_t(p * nc + i * (i + 1) / 2 + j);
          const float scale = std::sqrt(r.covariance[std::size_t(p * nc + i * (i + 1) / 2 + i)] *
                                        r.covariance[std::size_t(p * nc + j * (j + 1) / 2 + j)]);
          EXPECT_NEAR(cov[k], r.covariance[k], 2e-3f * scale) << spec.model_name() << " pixel " << p << " (" << i
                                                               << ", " << j << ")";
        }
    }
    EXPECT_GT(compared, 100);
  }
}

TEST_F(UserModel, StartsComeFromTheMeanSpectrumFit) {
  // A stretched exponential written by hand, its start from --start values
  // that are off by a factor 2 in T1: the mean spectrum's fit corrects them.
  std::vector<float> x;
  for (int i = 0; i < 60; ++i) x.push_back(5.0f + 50.0f * float(i));
  std::vector<float> mean;
  for (float xv : x) mean.push_back(float(0.1 + 0.9 * std::exp(-std::pow(xv / 400.0, 0.8))));
  const auto user = std::make_shared<const fit::CompiledModel>(
      fit::ExprSource{"offset + amp * exp(-(x / t1)^beta)", {"offset", "amp", "t1", "beta"}, {}},
      std::vector<double>{0, 1, 800, 1});
  const auto g = fit::spectrum_start(fit::expression_spec(user), x, mean);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_NEAR(g[2], 400, 1);
  EXPECT_NEAR(g[3], 0.8, 1e-3);
}

TEST_F(UserModel, ShippedModelsHaveTheirDerivatives) {
  // Every shipped model file parses, and its derivatives and its derived
  // maps' gradients match central differences near typical values.
  const auto names = fit::shipped_models();
  for (const char* want : {"esr14n", "esr15n", "esr14n_pair", "esr15n_pair"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  std::mt19937 rng(4);
  std::uniform_real_distribution<double> jitter(-0.3, 0.3);
  for (const auto& name : names) {
    const fit::UserModelDescription d = fit::load_model_file(fit::find_model(name));
    const fit::ExprModel m(d.source);
    std::vector<double> p;
    for (const auto& n : m.param_names()) {
      const double v = n == "offset" ? 1.0 : n == "amp" ? 0.01 : n == "fwhm" ? 1.2 : n == "pos" ? 2870.0
                       : n == "pos_lo" ? 2800.0 : 2940.0;
      p.push_back(v);
    }
    const int P = m.n_params();
    std::vector<double> J(static_cast<std::size_t>(P)), g(static_cast<std::size_t>(P));
    for (int trial = 0; trial < 30; ++trial) {
      const double x = (trial % 2 ? 2800.0 : 2870.0) + 4 * jitter(rng);
      m.derivatives(x, p, J.data());
      for (int j = 0; j < P; ++j) {
        auto q = p;
        const double h = 1e-5;  // small against the linewidth, large against rounding
        q[std::size_t(j)] += h;
        const double f1 = m.value(x, q);
        q[std::size_t(j)] -= 2 * h;
        const double numeric = (f1 - m.value(x, q)) / (2 * h);
        EXPECT_NEAR(J[std::size_t(j)], numeric, 1e-6 * std::fabs(numeric) + 1e-9)
            << name << ": d/d" << m.param_names()[std::size_t(j)] << " at x = " << x;
      }
    }
    for (int k = 0; k < m.n_derived(); ++k) {
      m.derived_gradient(k, p, g.data());
      for (int j = 0; j < P; ++j) {
        auto q = p;
        q[std::size_t(j)] += 1e-3;
        const double up = m.derived(k, q);
        q[std::size_t(j)] -= 2e-3;
        EXPECT_NEAR(g[std::size_t(j)], (up - m.derived(k, q)) / 2e-3, 1e-8) << name << " derived " << k;
      }
    }
  }
}

std::string model_error(const fit::ExprSource& src, std::vector<double> start) {
  try {
    fit::CompiledModel m(src, std::move(start));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST_F(UserModel, BadModelsGetOneClearMessage) {
  EXPECT_EQ(model_error({"a * exp(-x / tau)", {"a", "t"}, {}}, {1, 1}),
            "expression: unknown name 'tau' (not x, a parameter, a constant or a definition) at position 14");
  EXPECT_EQ(model_error({"a * x", {"a", "b"}, {}}, {1, 1}),
            "--params: 'b' is listed but the expression does not use it");
  EXPECT_EQ(model_error({"a * x", {}, {}}, {}), "--params: a model needs at least one parameter");
  EXPECT_EQ(model_error({"a * x", {"a", "a"}, {}}, {1, 1}), "--params: 'a' is given twice");
  EXPECT_EQ(model_error({"exp * x", {"exp"}, {}}, {1}), "--params: 'exp' is reserved");
  EXPECT_EQ(model_error({"a * x + k", {"a"}, {{"k", NAN}}}, {1}), "--const k: value must be finite");
  EXPECT_EQ(model_error({"a * x", {"a"}, {}}, {1, 2}), "--start: 2 values for 1 parameters");
  EXPECT_EQ(model_error({"(a * x", {"a"}, {}}, {1}), "expression: unbalanced '(' opened at position 1");
}

TEST_F(UserModel, AMissingCompilerIsNamed) {
  const char* old = std::getenv("TESSERA_CXX");
  setenv("TESSERA_CXX", "/nonexistent/c++", 1);
  const std::string e = model_error({"a * x * x + 3.25", {"a"}, {}}, {1});
  if (old) setenv("TESSERA_CXX", old, 1);
  else unsetenv("TESSERA_CXX");
  EXPECT_EQ(e, "no C++ compiler to build the model (/nonexistent/c++): install one (Debian: g++) or set TESSERA_CXX");
}

}  // namespace

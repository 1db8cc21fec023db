// bench_user_model: a model of the user's own (--expr) against the built-in
// model it writes out, on the same spectra from the same starts, in one run:
// pixels per second of fit_batch for both (best of several passes, passes
// alternating), their ratio, the agreement of the results, and the model's
// first-use compile time and cached load time. A measurement program, not a
// test: it asserts nothing.
//
//   bench_user_model [--pixels N] [--points N] [--threads T] [--passes P] [--peaks 2|8]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "fit/batch.hpp"
#include "fit/model_spec.hpp"
#include "fit/user_model.hpp"

using namespace tessera;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string lorentzians(int n) {
  std::string e = "offset";
  for (int k = 0; k < n; ++k) {
    const std::string s = std::to_string(k);
    e += " + amp" + s + " / (1 + ((x - pos" + s + ") / (fwhm" + s + " / 2))^2)";
  }
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  int pixels = 50000, points = 100, threads = 1, passes = 5, peaks = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (k == "--pixels") pixels = v;
    else if (k == "--points") points = v;
    else if (k == "--threads") threads = v;
    else if (k == "--passes") passes = v;
    else if (k == "--peaks") peaks = v;
    else {
      std::fprintf(stderr, "bench_user_model: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  // Spectra: `peaks` Lorentzian dips spread over the sweep, moving a little
  // from pixel to pixel, noise 2e-3 on 1 % dips.
  std::vector<float> x;
  for (int i = 0; i < points; ++i) x.push_back(2700.0f + 300.0f * float(i) / float(points - 1));
  const fit::ModelSpec builtin = fit::make_model_spec("lorentzian", peaks, "constant", x);
  const int P = builtin.n_params();
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0, 2e-3);
  std::uniform_real_distribution<double> shift(-2, 2);
  std::vector<float> y(std::size_t(pixels) * points), start(std::size_t(pixels) * P);
  std::vector<double> nominal{1};
  for (int k = 0; k < peaks; ++k) nominal.insert(nominal.end(), {2720 + 260.0 * (k + 0.5) / peaks, 9, -0.01});
  for (int p = 0; p < pixels; ++p) {
    std::vector<double> truth = nominal;
    for (int k = 0; k < peaks; ++k) truth[std::size_t(1 + 3 * k)] += shift(rng);
    for (int i = 0; i < points; ++i) {
      double v = truth[0];
      for (int k = 0; k < peaks; ++k) {
        const double u = (x[std::size_t(i)] - truth[std::size_t(1 + 3 * k)]) / 4.5;
        v += truth[std::size_t(3 + 3 * k)] / (1 + u * u);
      }
      y[std::size_t(p) * points + i] = float(v + noise(rng));
    }
    for (int j = 0; j < P; ++j) start[std::size_t(p) * P + j] = float(nominal[std::size_t(j)]);
  }

  // The model: compiled once into a fresh cache, then loaded from it.
  const std::string cache = (std::filesystem::temp_directory_path() / ("bench_user_model_" + std::to_string(getpid()))).string();
  setenv("TESSERA_CACHE", cache.c_str(), 1);
  std::vector<std::string> names = builtin.param_names();
  auto t0 = Clock::now();
  auto user = std::make_shared<const fit::CompiledModel>(fit::ExprSource{lorentzians(peaks), names, {}}, nominal);
  const double compile_s = seconds_since(t0);
  t0 = Clock::now();
  user = std::make_shared<const fit::CompiledModel>(fit::ExprSource{lorentzians(peaks), names, {}}, nominal);
  const double load_s = seconds_since(t0);
  const fit::ModelSpec mine = fit::expression_spec(user);

  fit::FitOptions o;
  o.threads = threads;
  const fit::FitBatch batch{x, y.data(), nullptr, nullptr, start.data(), pixels};
  double best_builtin = 1e300, best_expr = 1e300;
  fit::FitResults a, b;
  for (int pass = 0; pass < passes; ++pass) {
    t0 = Clock::now();
    a = fit::fit_batch(builtin, batch, o);
    best_builtin = std::min(best_builtin, seconds_since(t0));
    t0 = Clock::now();
    b = fit::fit_batch(mine, batch, o);
    best_expr = std::min(best_expr, seconds_since(t0));
  }
  int same_state = 0, converged = 0;
  double worst_pos = 0;
  for (int p = 0; p < pixels; ++p) {
    same_state += a.state[std::size_t(p)] == b.state[std::size_t(p)];
    if (a.state[std::size_t(p)] != 0 || b.state[std::size_t(p)] != 0) continue;
    ++converged;
    for (int k = 0; k < peaks; ++k) {
      const std::size_t j = std::size_t(p) * P + 1 + 3 * k;
      worst_pos = std::max(worst_pos, double(std::fabs(a.params[j] - b.params[j])));
    }
  }
  std::filesystem::remove_all(cache);
  std::printf("bench_user_model: %d Lorentzian dips + offset, %d points, %d spectra, %d thread(s), best of %d\n",
              peaks, points, pixels, threads, passes);
#if defined(__AVX512F__)
  std::printf("SIMD: AVX-512 (16 lanes)\n");
#elif defined(__AVX2__)
  std::printf("SIMD: AVX2 (8 lanes)\n");
#else
  std::printf("SIMD: narrower than AVX2\n");
#endif
  std::printf("  %-40s %10.0f px/s\n", "built-in --model lorentzian", pixels / best_builtin);
  std::printf("  %-40s %10.0f px/s  (%.2fx the built-in)\n", "--expr, compiled at run time", pixels / best_expr,
              best_builtin / best_expr);
  std::printf("  model compile (first use) %.2f s, load from the cache %.3f s\n", compile_s, load_s);
  std::printf("  agreement: %d/%d same states; both converged %d; largest centre difference %.2e MHz\n", same_state,
              pixels, converged, worst_pos);
  return 0;
}

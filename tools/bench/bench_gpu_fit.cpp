// bench_gpu_fit: fits per second of the CUDA fit backend (cuda::FitCudaSession)
// against the CPU backend (fit::fit_batch, all cores) on the ODMR cases of
// bench_fit (odmr_cases.hpp), and a check that the GPU's results are the CPU's:
// same states, parameters within 1e-4 relative or 0.2 of their one-sigma error
// (the rule of tests/cuda/consistency.hpp). See README.md.
//
//   bench_gpu_fit [--case a|b|all] [--pixels N] [--cpu-pixels N] [--threads T]
//                 [--min-time S] [--seed S] [--device N] [--layout pixel|sweep]
//                 [--kernel auto|thread|warp|both] [--cpu-only]
//
// Exit status: 0 when the GPU agrees with the CPU, and also when no CUDA device
// is visible (it says so and measures nothing); 1 when the results disagree;
// 2 for bad arguments or a CUDA error.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cuda/device_info.hpp"
#include "cuda/fit_cuda.hpp"
#include "fit/batch.hpp"
#include "fit/model_spec.hpp"
#include "odmr_cases.hpp"

namespace {

using namespace tessera;
using bench::OdmrCase;

struct Args {
  std::string which = "all";
  std::int64_t pixels = -1;      // GPU spectra per pass; -1: 20x the CPU default
  std::int64_t cpu_pixels = -1;  // CPU spectra per pass, also the compared ones
  int threads = 0;               // CPU threads; 0: all (FitOptions default)
  double min_time = 2.0;
  std::uint64_t seed = 20240611;
  int device = 0;
  bool sweep_major = false;
  std::string kernel = "both";
  bool cpu_only = false;
};

const char* usage =
    "usage: bench_gpu_fit [--case a|b|all] [--pixels N] [--cpu-pixels N] [--threads T]\n"
    "                     [--min-time S] [--seed S] [--device N] [--layout pixel|sweep]\n"
    "                     [--kernel auto|thread|warp|both] [--cpu-only]\n"
    "  --case        a: 2 dips + offset, 100 points; b: 8 dips + offset, 241 points (default all)\n"
    "  --pixels      spectra per GPU pass (default A 2000000, B 400000)\n"
    "  --cpu-pixels  spectra per CPU pass, compared with the GPU's (default A 100000, B 20000)\n"
    "  --threads     CPU threads (default: the cores of this process)\n"
    "  --min-time    each measurement repeats passes until this many wall seconds (default 2)\n"
    "  --device      CUDA device (default 0)\n"
    "  --layout      spectra handed to the GPU pixel-major (default, transposed on the device)\n"
    "                or sweep-major (as an HDF5 cube)\n"
    "  --kernel      GPU fit kernel: thread or warp per fit, auto (the backend's choice) or\n"
    "                both, one after the other in the same run (default both)\n"
    "  --cpu-only    measure the CPU backend only (iterations, fits/s), even without a GPU\n"
    "exit status: 0 agreement or no CUDA device, 1 GPU and CPU disagree, 2 bad usage or CUDA error\n";

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      return argv[++i];
    };
    if (k == "--case") a.which = value();
    else if (k == "--pixels") a.pixels = std::stoll(value());
    else if (k == "--cpu-pixels") a.cpu_pixels = std::stoll(value());
    else if (k == "--threads") a.threads = std::stoi(value());
    else if (k == "--min-time") a.min_time = std::stod(value());
    else if (k == "--seed") a.seed = std::stoull(value());
    else if (k == "--device") a.device = std::stoi(value());
    else if (k == "--layout") {
      const std::string v = value();
      if (v != "pixel" && v != "sweep") throw std::invalid_argument("--layout must be pixel or sweep");
      a.sweep_major = v == "sweep";
    } else if (k == "--kernel") {
      a.kernel = value();
      if (a.kernel != "auto" && a.kernel != "thread" && a.kernel != "warp" && a.kernel != "both")
        throw std::invalid_argument("--kernel must be auto, thread, warp or both");
    } else if (k == "--cpu-only") a.cpu_only = true;
    else if (k == "-h" || k == "--help") { std::fputs(usage, stdout); std::exit(0); }
    else throw std::invalid_argument("unknown argument " + k);
  }
  if (a.which != "a" && a.which != "b" && a.which != "all")
    throw std::invalid_argument("--case must be a, b or all");
  if ((a.pixels != -1 && a.pixels < 1) || (a.cpu_pixels != -1 && a.cpu_pixels < 1))
    throw std::invalid_argument("pixel counts must be positive");
  if (a.min_time < 0 || a.threads < 0 || a.device < 0)
    throw std::invalid_argument("--min-time, --threads and --device must not be negative");
  return a;
}

struct Timing {
  std::int64_t fits = 0;
  double wall = 0;
  double fits_per_s() const { return wall > 0 ? fits / wall : 0; }
};

template <class Pass> Timing time_passes(std::int64_t n, double min_time, Pass&& pass) {
  Timing t;
  const auto w0 = std::chrono::steady_clock::now();
  do {
    pass();
    t.fits += n;
    t.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  } while (t.wall < min_time);
  return t;
}

double mean_iterations(const fit::FitResults& r, std::int64_t n) {
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) s += r.iterations[std::size_t(i)];
  return n > 0 ? s / double(n) : 0;
}

double converged_fraction(const fit::FitResults& r, std::int64_t n) {
  std::int64_t k = 0;
  for (std::int64_t i = 0; i < n; ++i) k += r.state[std::size_t(i)] == 0 ? 1 : 0;
  return n > 0 ? double(k) / double(n) : 0;
}

// The GPU's results for the first n spectra against the CPU's.
struct Agreement {
  std::int64_t compared = 0;
  std::int64_t state_mismatch = 0;
  std::int64_t param_mismatch = 0;  // spectra with a parameter outside the rule
  double max_rel = 0;               // largest |gpu - cpu| / |cpu| over fitted parameters
  double max_sigma = 0;             // largest |gpu - cpu| / sigma_cpu
  bool ok() const { return state_mismatch == 0 && param_mismatch == 0; }
};

Agreement compare(const fit::FitResults& cpu, const fit::FitResults& gpu, std::int64_t n, int P) {
  Agreement a;
  a.compared = n;
  for (std::int64_t i = 0; i < n; ++i) {
    if (cpu.state[std::size_t(i)] != gpu.state[std::size_t(i)]) {
      ++a.state_mismatch;
      continue;
    }
    bool bad = false;
    for (int j = 0; j < P; ++j) {
      const std::size_t k = std::size_t(i) * P + j;
      const float c = cpu.params[k], g = gpu.params[k], s = cpu.sigma[k];
      if (std::isnan(c) || std::isnan(g)) {
        bad = bad || std::isnan(c) != std::isnan(g);
        continue;
      }
      const double d = std::fabs(double(c) - double(g));
      const double scale = std::max(std::fabs(c), std::fabs(g));
      if (scale > 0) a.max_rel = std::max(a.max_rel, d / scale);
      if (s > 0) a.max_sigma = std::max(a.max_sigma, d / s);
      bad = bad || !(d <= 1e-4 * scale || d <= 0.2 * std::fabs(s));
    }
    a.param_mismatch += bad ? 1 : 0;
  }
  return a;
}

fit::FitResults empty_results(std::int64_t n, int P) {
  fit::FitResults r;
  r.n_params = P;
  r.params.resize(std::size_t(n) * P);
  r.sigma.resize(std::size_t(n) * P);
  r.chi2.resize(std::size_t(n));
  r.state.resize(std::size_t(n));
  r.iterations.resize(std::size_t(n));
  return r;
}

// Returns false when the GPU disagrees with the CPU.
bool run_case(const OdmrCase& c, const Args& args, bool have_gpu) {
  const std::int64_t n_cpu = args.cpu_pixels > 0 ? args.cpu_pixels : c.default_pixels;
  const std::int64_t n_gpu = std::max(args.pixels > 0 ? args.pixels : 20 * c.default_pixels, n_cpu);
  const std::int64_t n_sim = have_gpu ? n_gpu : n_cpu;
  std::fprintf(stderr, "case %s: simulating %lld spectra...\n", c.label, (long long)n_sim);
  const bench::SimulatedCube cube = bench::simulate(c, n_sim, args.seed);
  const fit::ModelSpec spec = fit::make_model_spec("lorentzian", c.n_peaks, "constant", c.sweep);
  const int P = spec.n_params();

  fit::FitOptions opt;
  if (args.threads > 0) opt.threads = args.threads;
  fit::FitBatch batch;
  batch.x = c.sweep;
  batch.y = cube.y.data();
  batch.start = cube.start.data();
  batch.n_pix = n_cpu;
  fit::FitResults cpu;
  std::fprintf(stderr, "case %s: CPU backend, %lld spectra per pass...\n", c.label, (long long)n_cpu);
  const Timing t_cpu = time_passes(n_cpu, args.min_time, [&] { cpu = fit::fit_batch(spec, batch, opt); });

  std::printf("case %s: %s\n", c.label, c.description);
  std::printf("  %-4s %10s %8s %12s %10s %10s\n", "", "fits", "wall s", "fits/s", "mean iter", "converged");
  std::printf("  %-4s %10lld %8.2f %12.0f %10.2f %9.2f%%   (%d threads)\n", "cpu", (long long)t_cpu.fits,
              t_cpu.wall, t_cpu.fits_per_s(), mean_iterations(cpu, n_cpu),
              100 * converged_fraction(cpu, n_cpu), opt.threads > 0 ? opt.threads : fit::usable_cores());
  if (!have_gpu) return true;

  // The GPU side: the spectra as the host holds them (copies, transpose and
  // fits all inside the timed call, as tessera fit sees it).
  std::vector<float> y_sweep;
  if (args.sweep_major) {
    const std::size_t np = std::size_t(c.n_points());
    y_sweep.resize(cube.y.size());
    for (std::int64_t p = 0; p < n_gpu; ++p)
      for (std::size_t i = 0; i < np; ++i)
        y_sweep[i * std::size_t(n_gpu) + std::size_t(p)] = cube.y[std::size_t(p) * np + i];
  }
  cuda::FitModelDesc model;
  model.kind = cuda::FitModelKind::lorentzian;
  model.n_peaks = c.n_peaks;
  model.x_mid = spec.x_mid;
  cuda::FitConfigDesc config;
  config.estimator = opt.estimator;
  config.max_iter = opt.max_iter;
  config.tol = float(opt.tol);
  cuda::FitInputDesc in;
  in.x = c.sweep.data();
  in.n_points = c.n_points();
  in.y = args.sweep_major ? y_sweep.data() : cube.y.data();
  in.start = cube.start.data();
  in.n_pix = n_gpu;
  in.layout = args.sweep_major ? cuda::SpectrumLayout::sweep_major : cuda::SpectrumLayout::pixel_major;
  std::vector<std::pair<const char*, cuda::FitKernel>> kernels;
  if (args.kernel == "auto") kernels.emplace_back("auto", cuda::FitKernel::automatic);
  if (args.kernel == "thread" || args.kernel == "both")
    kernels.emplace_back("thread", cuda::FitKernel::thread_per_fit);
  if (args.kernel == "warp" || args.kernel == "both")
    kernels.emplace_back("warp", cuda::FitKernel::warp_per_fit);
  bool all_ok = true;
  for (const auto& [kernel_name, kernel] : kernels) {
    config.kernel = kernel;
    const char* chosen =
        cuda::use_warp_per_fit(kernel, P) ? "one warp per fit" : "one thread per fit";
    fit::FitResults gpu = empty_results(n_gpu, P);
    double kernel_s = 0, kernel_total = 0;
    const cuda::FitOutputDesc out{gpu.params.data(), gpu.sigma.data(), gpu.chi2.data(),
                                  gpu.state.data(), gpu.iterations.data(), &kernel_s};
    std::fprintf(stderr, "case %s: CUDA backend (%s), %lld spectra per pass...\n", c.label, chosen,
                 (long long)n_gpu);
    // A session, as tessera fit keeps across its chunks: the buffers are
    // allocated by the untimed first pass (with the context and modules).
    cuda::FitCudaSession session;
    session.fit(model, config, in, out);
    const Timing t_gpu = time_passes(n_gpu, args.min_time, [&] {
      session.fit(model, config, in, out);
      kernel_total += kernel_s;
    });
    std::printf("  gpu kernel %s: %s\n", kernel_name, chosen);
    std::printf("  %-4s %10lld %8.2f %12.0f %10.2f %9.2f%%   (%s layout; copies, staging and kernels)\n",
                "gpu", (long long)t_gpu.fits, t_gpu.wall, t_gpu.fits_per_s(),
                mean_iterations(gpu, n_gpu), 100 * converged_fraction(gpu, n_gpu),
                args.sweep_major ? "sweep-major" : "pixel-major");
    std::printf("  %-4s %10lld %8.2f %12.0f   (fit kernels alone, CUDA events)\n", "kern",
                (long long)t_gpu.fits, kernel_total,
                kernel_total > 0 ? t_gpu.fits / kernel_total : 0.0);
    std::printf("  gpu / cpu: %.1fx (kernels alone: %.1fx)\n", t_gpu.fits_per_s() / t_cpu.fits_per_s(),
                kernel_total > 0 ? t_gpu.fits / kernel_total / t_cpu.fits_per_s() : 0.0);

    const Agreement a = compare(cpu, gpu, n_cpu, P);
    std::printf("  agreement on %lld spectra: %lld state mismatches, %lld outside 1e-4 rel / 0.2 sigma; "
                "max |dp|/|p| %.2e, max |dp|/sigma %.2e: %s\n",
                (long long)a.compared, (long long)a.state_mismatch, (long long)a.param_mismatch,
                a.max_rel, a.max_sigma, a.ok() ? "ok" : "MISMATCH");
    all_ok = all_ok && a.ok();
  }
  return all_ok;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = parse_args(argc, argv);
    bool have_gpu = false;
    if (!args.cpu_only) {
      const cuda::DeviceQuery q = cuda::query_devices();
      if (q.devices.empty()) {
        std::printf("bench_gpu_fit: no CUDA device visible (%s): nothing to measure "
                    "(--cpu-only measures the CPU backend alone)\n",
                    q.message.c_str());
        return 0;
      }
      if (args.device >= int(q.devices.size()))
        throw std::invalid_argument("--device " + std::to_string(args.device) + ": only " +
                                    std::to_string(q.devices.size()) + " device(s) visible");
      const std::string err = cuda::set_device(args.device);
      if (!err.empty()) throw std::runtime_error(err);
      const cuda::DeviceInfo& d = q.devices[std::size_t(args.device)];
      std::printf("bench_gpu_fit: device %d: %s, compute capability %d.%d, %d SMs, %.1f GiB; "
                  "architectures compiled %s\n",
                  d.index, d.name.c_str(), d.major, d.minor, d.multiprocessors,
                  double(d.total_memory) / (1024.0 * 1024 * 1024), cuda::compiled_architectures());
      have_gpu = true;
    }
    std::printf("host: %u hardware threads; Lorentzian ODMR dips + constant offset, least squares, "
                "tol %.0e, max_iter %d; fits/s are wall-clock, host arrays in and out\n",
                std::thread::hardware_concurrency(), fit::FitOptions{}.tol, fit::FitOptions{}.max_iter);
    bool ok = true;
    if (args.which == "a" || args.which == "all") ok = run_case(bench::case_a(), args, have_gpu) && ok;
    if (args.which == "b" || args.which == "all") ok = run_case(bench::case_b(), args, have_gpu) && ok;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu_fit: %s\n", e.what());
    return 2;
  }
}

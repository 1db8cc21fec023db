// bench_fit: pixels per second per core and dip-centre accuracy of tessera's CPU
// batch fit (fit::fit_batch) against Ceres Solver on the same simulated ODMR
// spectra, from the same start values. A measurement program, not a test: it
// prints a table and asserts nothing. See README.md.
//
//   bench_fit [--case a|b|all] [--pixels N] [--ceres-pixels N] [--min-time S] [--rounds R]
//             [--seed S] [--tessera-tol T] [--ceres-ftol F] [--ceres-ref-ftol F] [--ceres-qr]
//   bench_fit --spectra PREFIX --peaks N [--min-time S] [--rounds R] [--ceres-ftol F] [--ceres-qr]
//             Ceres and fit_batch on spectra given in files (tools/bench/bench_fit_command.py)
#include <ceres/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ceres_fit.hpp"
#include "fit/batch.hpp"
#include "fit/model_spec.hpp"
#include "odmr_cases.hpp"

namespace {

using namespace tessera;
using bench::OdmrCase;
using bench::SimulatedCube;

struct Args {
  std::string which = "all";
  std::int64_t pixels = -1;        // tessera pixels per timed pass; -1: the case's default
  std::int64_t ceres_pixels = -1;  // Ceres pixels per timed pass, also the compared pixels
  double min_time = 2.5;           // seconds of wall time per measurement, at least
  int rounds = 2;                  // interleaved rounds; the best round is reported
  std::uint64_t seed = 20240611;
  double tessera_tol = tessera::fit::FitOptions{}.tol;
  bench::CeresSettings ceres;     // the timed Ceres run
  double ceres_ref_ftol = 1e-10;  // a second Ceres run to full convergence (0: none)
  std::string spectra;            // PREFIX of given spectra (--spectra); empty: the simulated cases
  int peaks = 2;
};

const char* usage =
    "usage: bench_fit [--case a|b|all] [--pixels N] [--ceres-pixels N] [--min-time S] [--rounds R]\n"
    "                 [--seed S] [--tessera-tol T] [--ceres-ftol F] [--ceres-ref-ftol F] [--ceres-qr]\n"
    "  --case          a: 2 dips + offset, 100 points; b: 8 dips + offset, 241 points (default all)\n"
    "  --pixels        spectra per timed pass for tessera (default A 100000, B 20000)\n"
    "  --ceres-pixels  spectra per timed pass for Ceres; accuracy is compared on these (A 50000, B 3600)\n"
    "  --min-time      each measurement repeats passes until this many wall seconds (default 2.5)\n"
    "  --rounds        interleaved rounds Ceres / Ceres-ref / tessera 1 thread / 2 threads (default 2)\n"
    "  --tessera-tol   tessera FitOptions::tol (default: the library's default)\n"
    "  --ceres-ftol    Ceres function_tolerance (default 1e-6, Ceres's own default)\n"
    "  --ceres-ref-ftol  function_tolerance of the reference Ceres run, \"Ceres-ref\" (default 1e-10; 0: none)\n"
    "  --ceres-qr      Ceres DENSE_QR instead of DENSE_NORMAL_CHOLESKY\n"
    "  --spectra P     instead of the cases: P.x (n float32 sweep values), P.y ([pixels][n] float32),\n"
    "                  P.start ([pixels][1 + 3 peaks] float32: offset, then pos, fwhm, amp per dip),\n"
    "                  fitted by Ceres and by fit_batch (1 thread) from those starts; prints one line\n"
    "  --peaks N       dips of the --spectra model (default 2)\n";

Args parse_args(int argc, char** argv) {
  Args a;
  a.ceres.function_tolerance = 1e-6;
  a.ceres.dense_qr = false;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      return argv[++i];
    };
    if (k == "--case") a.which = value();
    else if (k == "--pixels") a.pixels = std::stoll(value());
    else if (k == "--ceres-pixels") a.ceres_pixels = std::stoll(value());
    else if (k == "--min-time") a.min_time = std::stod(value());
    else if (k == "--rounds") a.rounds = std::stoi(value());
    else if (k == "--seed") a.seed = std::stoull(value());
    else if (k == "--tessera-tol") a.tessera_tol = std::stod(value());
    else if (k == "--ceres-ftol") a.ceres.function_tolerance = std::stod(value());
    else if (k == "--ceres-ref-ftol") a.ceres_ref_ftol = std::stod(value());
    else if (k == "--ceres-qr") a.ceres.dense_qr = true;
    else if (k == "--spectra") a.spectra = value();
    else if (k == "--peaks") a.peaks = std::stoi(value());
    else if (k == "-h" || k == "--help") { std::fputs(usage, stdout); std::exit(0); }
    else throw std::invalid_argument("unknown argument " + k);
  }
  if (a.which != "a" && a.which != "b" && a.which != "all") throw std::invalid_argument("--case must be a, b or all");
  if (a.rounds < 1 || a.min_time < 0) throw std::invalid_argument("--rounds >= 1 and --min-time >= 0");
  if ((a.pixels != -1 && a.pixels < 1) || (a.ceres_pixels != -1 && a.ceres_pixels < 1))
    throw std::invalid_argument("pixel counts must be positive");
  return a;
}

// ---- timing -------------------------------------------------------------------

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

struct Timing {
  std::int64_t pixels = 0;
  double wall = 0;  // seconds
  double cpu = 0;   // process CPU seconds, all threads
  int threads = 1;
  double px_per_s() const { return pixels / wall; }
  double px_per_s_core() const { return pixels / wall / threads; }
  double px_per_cpu_s() const { return pixels / cpu; }
};

// Runs pass() (which fits n_pix spectra) until at least min_time wall seconds.
template <class Pass> Timing time_passes(std::int64_t n_pix, int threads, double min_time, Pass&& pass) {
  Timing t;
  t.threads = threads;
  const auto w0 = std::chrono::steady_clock::now();
  const double c0 = process_cpu_seconds();
  do {
    pass();
    t.pixels += n_pix;
    t.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  } while (t.wall < min_time);
  t.cpu = process_cpu_seconds() - c0;
  return t;
}

Timing best_of(const std::vector<Timing>& ts) {
  return *std::max_element(ts.begin(), ts.end(),
                           [](const Timing& l, const Timing& r) { return l.px_per_s() < r.px_per_s(); });
}

// ---- accuracy -----------------------------------------------------------------

struct Accuracy {
  std::int64_t n_pix = 0;
  std::int64_t nonfinite_pix = 0;  // a centre NaN or infinite: left out of the errors
  std::int64_t outliers = 0;       // centres more than 5 MHz from the truth
  double rms = 0;                  // MHz, over all finite centres
  double median_abs = 0;
  std::vector<double> rms_by_dip;
};

template <class Param>
Accuracy centre_accuracy(const OdmrCase& c, const SimulatedCube& cube, std::int64_t n_pix, Param&& param) {
  Accuracy a;
  a.n_pix = n_pix;
  std::vector<double> abs_err;
  std::vector<double> se_dip(c.n_peaks, 0.0);
  std::vector<std::int64_t> n_dip(c.n_peaks, 0);
  for (std::int64_t i = 0; i < n_pix; ++i) {
    bool finite = true;
    for (int k = 0; k < c.n_peaks; ++k) finite = finite && std::isfinite(param(i, bench::pos_index(k)));
    if (!finite) { ++a.nonfinite_pix; continue; }
    for (int k = 0; k < c.n_peaks; ++k) {
      const double e = param(i, bench::pos_index(k)) - cube.truth[i * cube.n_params + bench::pos_index(k)];
      abs_err.push_back(std::abs(e));
      se_dip[k] += e * e;
      ++n_dip[k];
      if (std::abs(e) > 5.0) ++a.outliers;
    }
  }
  double se = 0;
  for (int k = 0; k < c.n_peaks; ++k) {
    se += se_dip[k];
    a.rms_by_dip.push_back(n_dip[k] ? std::sqrt(se_dip[k] / n_dip[k]) : NAN);
  }
  if (!abs_err.empty()) {
    a.rms = std::sqrt(se / abs_err.size());
    auto mid = abs_err.begin() + abs_err.size() / 2;
    std::nth_element(abs_err.begin(), mid, abs_err.end());
    a.median_abs = *mid;
  } else {
    a.rms = a.median_abs = NAN;
  }
  return a;
}

double crb_rms(const OdmrCase& c, const SimulatedCube& cube, std::int64_t n_pix) {
  double sum = 0;
  for (std::int64_t i = 0; i < n_pix; ++i)
    for (double v : bench::centre_crb_variance(c, {cube.truth.data() + i * cube.n_params, std::size_t(cube.n_params)}))
      sum += v;
  return std::sqrt(sum / (n_pix * c.n_peaks));
}

// ---- report -------------------------------------------------------------------

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string one, five, fifteen;
  f >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

const char* state_name(int s) {
  return s >= 0 && s < core::n_fit_states ? core::state_name(core::FitState(s)) : "other";
}

struct CaseSummary {
  const char* label = "";
  Timing ceres, ceres_ref, t1, t2;
  bool have_ref = false;
  double rms_ratio = NAN;
  double tessera_converged = NAN;
};

void print_timing_row(const char* tool, const Timing& t, const Timing& ceres) {
  std::printf("  %-9s %7d %10lld %8.2f %10.0f %11.0f %10.0f %9.2fx\n", tool, t.threads,
              static_cast<long long>(t.pixels), t.wall, t.px_per_s(), t.px_per_s_core(), t.px_per_cpu_s(),
              t.px_per_s_core() / ceres.px_per_s_core());
}

void print_accuracy_row(const char* tool, double conv_pct, double mean_iter, const Accuracy& a) {
  std::printf("  %-9s %8.2f %9.2f %12.4f %13.4f %7lld %10lld  ", tool, conv_pct, mean_iter, a.rms, a.median_abs,
              static_cast<long long>(a.outliers), static_cast<long long>(a.nonfinite_pix));
  for (double r : a.rms_by_dip) std::printf(" %.3f", r);
  std::printf("\n");
}

// Pixel-by-pixel distance between two solutions' centres: do they reach the same minimum?
struct CentreDiff {
  double rms = 0, max = 0;
  std::int64_t over_0p1 = 0;  // centres more than 0.1 MHz apart
  std::int64_t worst = -1;    // the pixel of the largest difference
};

template <class A, class B>
CentreDiff centre_diff(const OdmrCase& c, std::int64_t n_pix, A&& param_a, B&& param_b) {
  CentreDiff r;
  double se = 0;
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < n_pix; ++i)
    for (int k = 0; k < c.n_peaks; ++k) {
      const double d = param_a(i, bench::pos_index(k)) - param_b(i, bench::pos_index(k));
      if (!std::isfinite(d)) continue;
      se += d * d;
      if (std::abs(d) > r.max) {
        r.max = std::abs(d);
        r.worst = i;
      }
      r.over_0p1 += std::abs(d) > 0.1;
      ++n;
    }
  r.rms = n ? std::sqrt(se / n) : NAN;
  return r;
}

void print_diff(const char* what, const CentreDiff& d) {
  std::printf("  centres %-22s rms %.2e MHz, max %.2e MHz, %lld over 0.1 MHz\n", what, d.rms, d.max,
              static_cast<long long>(d.over_0p1));
}

// Least-squares chi-square of pixel i in double at the parameters param(i, j).
template <class Param> double chi2_at(const OdmrCase& c, const SimulatedCube& cube, std::int64_t i, Param&& param) {
  std::vector<double> p(cube.n_params);
  for (int j = 0; j < cube.n_params; ++j) p[j] = param(i, j);
  double chi2 = 0;
  for (int k = 0; k < cube.n_points; ++k) {
    const double r = cube.y[i * cube.n_points + k] - bench::lorentzian_dips(p, c.n_peaks, c.sweep[k]);
    chi2 += r * r;
  }
  return chi2;
}

// The pixel where tessera and the reference differ most: a chi-square above the
// reference's means tessera stopped early; equal or below, another minimum.
template <class Tess, class Ref>
void print_worst(const OdmrCase& c, const SimulatedCube& cube, const fit::FitResults& tr, std::int64_t i,
                 const char* ref_name, Tess&& tess, Ref&& ref) {
  if (i < 0) return;
  std::printf("  largest difference, pixel %lld: tessera state %d, %d iterations, chi2 %.6e (double, at its "
              "parameters), %s chi2 %.6e\n",
              static_cast<long long>(i), tr.state[i], tr.iterations[i], chi2_at(c, cube, i, tess), ref_name,
              chi2_at(c, cube, i, ref));
  std::printf("    centres: truth");
  for (int k = 0; k < c.n_peaks; ++k) std::printf(" %.3f", cube.truth[i * cube.n_params + bench::pos_index(k)]);
  std::printf("; start");
  for (int k = 0; k < c.n_peaks; ++k) std::printf(" %.3f", cube.start[i * cube.n_params + bench::pos_index(k)]);
  std::printf("; tessera");
  for (int k = 0; k < c.n_peaks; ++k) std::printf(" %.3f", tess(i, bench::pos_index(k)));
  std::printf("; %s", ref_name);
  for (int k = 0; k < c.n_peaks; ++k) std::printf(" %.3f", ref(i, bench::pos_index(k)));
  std::printf("\n");
}

double mean_of(const std::vector<std::int32_t>& v) {
  double s = 0;
  for (auto x : v) s += x;
  return v.empty() ? NAN : s / v.size();
}
double percent_of(const std::vector<std::uint8_t>& v) {
  double s = 0;
  for (auto x : v) s += x;
  return v.empty() ? NAN : 100.0 * s / v.size();
}

CaseSummary run_case(const OdmrCase& c, const Args& args) {
  const std::int64_t n_ceres = args.ceres_pixels > 0 ? args.ceres_pixels : c.default_ceres_pixels;
  const std::int64_t n_tessera = std::max(args.pixels > 0 ? args.pixels : c.default_pixels, n_ceres);

  std::fprintf(stderr, "case %s: simulating %lld spectra...\n", c.label, static_cast<long long>(n_tessera));
  const SimulatedCube cube = bench::simulate(c, n_tessera, args.seed);
  const fit::ModelSpec spec = fit::make_model_spec("lorentzian", c.n_peaks, "constant", c.sweep);

  // The simulator and tessera's model must agree, else the accuracy compares different models.
  double model_diff = 0;
  {
    const std::vector<double> x(c.sweep.begin(), c.sweep.end());
    const std::vector<double> truth0(cube.truth.begin(), cube.truth.begin() + cube.n_params);
    const std::vector<double> f = fit::model_values(spec, truth0, x);
    for (int j = 0; j < c.n_points(); ++j)
      model_diff = std::max(model_diff, std::abs(f[j] - bench::lorentzian_dips(truth0, c.n_peaks, x[j])));
  }

  fit::FitBatch batch;
  batch.x = c.sweep;
  batch.y = cube.y.data();
  batch.start = cube.start.data();
  batch.n_pix = n_tessera;

  CaseSummary s;
  s.label = c.label;
  s.have_ref = args.ceres_ref_ftol > 0;
  bench::CeresSettings ref_settings = args.ceres;
  ref_settings.function_tolerance = args.ceres_ref_ftol;

  bench::CeresFitResults ceres_res, ref_res;
  fit::FitResults tess_res;
  std::vector<Timing> t_ceres, t_ref, t_one, t_two;
  for (int round = 0; round < args.rounds; ++round) {
    std::fprintf(stderr, "case %s round %d: Ceres...\n", c.label, round + 1);
    t_ceres.push_back(time_passes(n_ceres, 1, args.min_time, [&] {
      ceres_res = bench::ceres_fit_lorentzian(c.n_peaks, c.sweep, cube.y.data(), cube.start.data(), n_ceres,
                                              args.ceres);
    }));
    if (s.have_ref) {
      std::fprintf(stderr, "case %s round %d: Ceres, reference tolerance...\n", c.label, round + 1);
      t_ref.push_back(time_passes(n_ceres, 1, args.min_time, [&] {
        ref_res = bench::ceres_fit_lorentzian(c.n_peaks, c.sweep, cube.y.data(), cube.start.data(), n_ceres,
                                              ref_settings);
      }));
    }
    for (int threads : {1, 2}) {
      std::fprintf(stderr, "case %s round %d: tessera, %d thread(s)...\n", c.label, round + 1, threads);
      fit::FitOptions opt;
      opt.threads = threads;
      opt.tol = args.tessera_tol;
      (threads == 1 ? t_one : t_two).push_back(time_passes(n_tessera, threads, args.min_time, [&] {
        tess_res = fit::fit_batch(spec, batch, opt);
      }));
    }
  }
  s.ceres = best_of(t_ceres);
  if (s.have_ref) s.ceres_ref = best_of(t_ref);
  s.t1 = best_of(t_one);
  s.t2 = best_of(t_two);

  const int np = cube.n_params;
  auto ceres_param = [&](std::int64_t i, int j) { return ceres_res.params[i * np + j]; };
  auto ref_param = [&](std::int64_t i, int j) { return ref_res.params[i * np + j]; };
  auto tess_param = [&](std::int64_t i, int j) { return static_cast<double>(tess_res.params[i * np + j]); };
  const Accuracy acc_ceres = centre_accuracy(c, cube, n_ceres, ceres_param);
  const Accuracy acc_tess = centre_accuracy(c, cube, n_ceres, tess_param);
  s.rms_ratio = acc_tess.rms / acc_ceres.rms;

  std::vector<std::int64_t> states(7, 0);
  std::int64_t tess_iter = 0, tess_iter_conv = 0, tess_conv_sub = 0, tess_iter_sub = 0;
  for (std::int64_t i = 0; i < n_tessera; ++i) {
    const int st = tess_res.state[i];
    ++states[st >= 0 && st < 6 ? st : 6];
    tess_iter += tess_res.iterations[i];
    if (st == 0) tess_iter_conv += tess_res.iterations[i];
    if (i < n_ceres) {
      tess_conv_sub += st == 0;
      tess_iter_sub += tess_res.iterations[i];
    }
  }
  s.tessera_converged = 100.0 * states[0] / n_tessera;

  std::printf("\n== Case %s: %s (%.0f-%.0f MHz) ==\n", c.label, c.description, c.sweep.front(), c.sweep.back());
  std::printf("model check: max |tessera model_values - simulator| = %.2e\n", model_diff);
  std::printf("speed (best of %d rounds; px/cpu-s = pixels per process CPU second, all threads):\n", args.rounds);
  std::printf("  %-9s %7s %10s %8s %10s %11s %10s %10s\n", "tool", "threads", "pixels", "wall s", "px/s",
              "px/s/core", "px/cpu-s", "vs Ceres");
  print_timing_row("Ceres", s.ceres, s.ceres);
  if (s.have_ref) print_timing_row("Ceres-ref", s.ceres_ref, s.ceres);
  print_timing_row("tessera", s.t1, s.ceres);
  print_timing_row("tessera", s.t2, s.ceres);
  auto rounds = [](const char* what, const std::vector<Timing>& ts) {
    std::printf(" %s", what);
    for (const Timing& t : ts) std::printf(" %.0f", t.px_per_s_core());
    std::printf(";");
  };
  std::printf("  all rounds, px/s/core:");
  rounds("Ceres", t_ceres);
  if (s.have_ref) rounds("Ceres-ref", t_ref);
  rounds("tessera 1t", t_one);
  rounds("tessera 2t", t_two);
  std::printf("\n");

  std::printf("accuracy of the dip centres on the %lld pixels all fitted (Cramer-Rao rms %.4f MHz):\n",
              static_cast<long long>(n_ceres), crb_rms(c, cube, n_ceres));
  std::printf("  %-9s %8s %9s %12s %13s %7s %10s   %s\n", "tool", "conv %", "mean it", "rms err MHz",
              "median |err|", ">5 MHz", "nonfinite", "rms by dip (MHz, low to high frequency)");
  print_accuracy_row("Ceres", percent_of(ceres_res.converged), mean_of(ceres_res.iterations), acc_ceres);
  if (s.have_ref)
    print_accuracy_row("Ceres-ref", percent_of(ref_res.converged), mean_of(ref_res.iterations),
                       centre_accuracy(c, cube, n_ceres, ref_param));
  print_accuracy_row("tessera", 100.0 * tess_conv_sub / n_ceres, double(tess_iter_sub) / n_ceres, acc_tess);
  std::printf("  tessera/Ceres rms ratio %.4f\n", s.rms_ratio);
  print_diff("tessera - Ceres:", centre_diff(c, n_ceres, tess_param, ceres_param));
  if (s.have_ref) {
    const CentreDiff d = centre_diff(c, n_ceres, tess_param, ref_param);
    print_diff("tessera - Ceres-ref:", d);
    print_diff("Ceres - Ceres-ref:", centre_diff(c, n_ceres, ceres_param, ref_param));
    print_worst(c, cube, tess_res, d.worst, "Ceres-ref", tess_param, ref_param);
  } else {
    print_worst(c, cube, tess_res, centre_diff(c, n_ceres, tess_param, ceres_param).worst, "Ceres", tess_param,
                ceres_param);
  }
  std::printf("tessera states over all %lld pixels:", static_cast<long long>(n_tessera));
  for (int st = 0; st < 7; ++st)
    if (states[st])
      std::printf(" %s %lld (%.3f %%)", state_name(st), static_cast<long long>(states[st]),
                  100.0 * states[st] / n_tessera);
  std::printf("; mean iterations %.2f (converged pixels %.2f)\n", double(tess_iter) / n_tessera,
              states[0] ? double(tess_iter_conv) / states[0] : NAN);
  std::fflush(stdout);
  return s;
}

std::vector<float> read_floats(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw std::invalid_argument("cannot open " + path);
  const std::streamsize bytes = f.tellg();
  if (bytes <= 0 || bytes % 4 != 0) throw std::invalid_argument(path + ": not a float32 array");
  std::vector<float> v(static_cast<std::size_t>(bytes / 4));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), bytes);
  return v;
}

// --spectra: Ceres and fit_batch (one thread each, interleaved rounds, best
// round) on the given spectra from the given starts; one line of results.
int run_spectra(const Args& args) {
  const std::vector<float> x = read_floats(args.spectra + ".x"), y = read_floats(args.spectra + ".y"),
                           start = read_floats(args.spectra + ".start");
  const int n = int(x.size()), P = 1 + 3 * args.peaks;
  const std::int64_t n_pix = std::int64_t(y.size()) / n;
  if (args.peaks < 1 || std::int64_t(y.size()) != n_pix * n || std::int64_t(start.size()) != n_pix * P)
    throw std::invalid_argument("--spectra: sizes of .x, .y and .start do not fit --peaks " +
                                std::to_string(args.peaks));
  const fit::ModelSpec spec = fit::make_model_spec("lorentzian", args.peaks, "constant", x);
  fit::FitBatch batch;
  batch.x = x;
  batch.y = y.data();
  batch.start = start.data();
  batch.n_pix = n_pix;
  fit::FitOptions opt;
  opt.threads = 1;
  opt.tol = args.tessera_tol;
  std::vector<Timing> t_ceres, t_tess;
  bench::CeresFitResults c;
  fit::FitResults t;
  for (int round = 0; round < args.rounds; ++round) {
    t_ceres.push_back(time_passes(n_pix, 1, args.min_time, [&] {
      c = bench::ceres_fit_lorentzian(args.peaks, x, y.data(), start.data(), n_pix, args.ceres);
    }));
    t_tess.push_back(time_passes(n_pix, 1, args.min_time, [&] { t = fit::fit_batch(spec, batch, opt); }));
  }
  std::int64_t ceres_conv = 0, tess_conv = 0;
  for (std::int64_t i = 0; i < n_pix; ++i) {
    ceres_conv += c.converged[std::size_t(i)];
    tess_conv += t.state[std::size_t(i)] == 0;
  }
  std::printf("spectra %lld x %d points, %d dips: Ceres %.0f px/s (%.1f %% converged), fit_batch %.0f px/s "
              "(%.1f %% converged), one thread each, best of %d rounds; %s\n",
              static_cast<long long>(n_pix), n, args.peaks, best_of(t_ceres).px_per_s(),
              100.0 * ceres_conv / n_pix, best_of(t_tess).px_per_s(), 100.0 * tess_conv / n_pix, args.rounds,
              args.ceres.describe().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse_args(argc, argv);
  if (!args.spectra.empty()) return run_spectra(args);
  std::vector<OdmrCase> cases;
  if (args.which == "a" || args.which == "all") cases.push_back(bench::case_a());
  if (args.which == "b" || args.which == "all") cases.push_back(bench::case_b());

  std::printf("bench_fit: tessera fit_batch vs Ceres Solver %s, Lorentzian ODMR dips + constant offset, least squares\n",
              CERES_VERSION_STRING);
  std::printf("host: %s, %u hardware threads; load average at start %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), load_average().c_str());
  std::printf("spectra: Gaussian noise sigma %.0e (seed %llu), dips ~1 %% deep, fwhm 8-10 MHz\n", bench::noise_sigma,
              static_cast<unsigned long long>(args.seed));
  std::printf("starts (both tools): truth with centres +-1.5 MHz, fwhm x1.15, amp x0.85, offset +0.002\n");
  std::printf("Ceres:   %s\n", args.ceres.describe().c_str());
  if (args.ceres_ref_ftol > 0)
    std::printf("Ceres-ref: the same with function_tolerance %.0e (full convergence: the reference minimum)\n",
                args.ceres_ref_ftol);
  std::printf("tessera: fit_batch, LSE, tol %.0e, max_iter %d, threads 1 and 2\n", args.tessera_tol,
              fit::FitOptions{}.max_iter);
  std::printf("timing:  each measurement repeats passes until >= %.1f s wall; rounds interleave "
              "Ceres / Ceres-ref / tessera 1t / tessera 2t\n",
              args.min_time);
  std::fflush(stdout);

  std::vector<CaseSummary> summaries;
  for (const OdmrCase& c : cases) summaries.push_back(run_case(c, args));

  std::printf("\n== Summary: pixels per second per core (best round) ==\n");
  std::printf("  %-4s %9s %10s %11s %9s %9s %11s %9s %14s %10s\n", "case", "Ceres 1t", "Ceres-ref", "tessera 1t",
              "/Ceres", "/ref", "tessera 2t", "/Ceres", "rms tes/Ceres", "tes conv %");
  for (const CaseSummary& s : summaries) {
    const double ceres = s.ceres.px_per_s_core(), ref = s.have_ref ? s.ceres_ref.px_per_s_core() : NAN;
    std::printf("  %-4s %9.0f %10.0f %11.0f %8.2fx %8.2fx %11.0f %8.2fx %14.4f %10.3f\n", s.label, ceres, ref,
                s.t1.px_per_s_core(), s.t1.px_per_s_core() / ceres, s.t1.px_per_s_core() / ref,
                s.t2.px_per_s_core(), s.t2.px_per_s_core() / ceres, s.rms_ratio, s.tessera_converged);
  }
  std::printf("load average at end %s (timings are wall-clock; other work on the machine lowers them)\n",
              load_average().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_fit: %s\n", e.what());
  return 1;
}

// xcorr_fft_floor: how long FFTW's transforms of one padded size take on one
// core, the part of `tessera xcorr` that no change outside FFTW can remove.
// bench_xcorr.py runs it for the run's size (the output's fft_size) and turns
// the times into the fastest the command could be if everything but the
// transforms took no time (a bound, not an estimate). A measurement program,
// not a test.
//
//   xcorr_fft_floor ROWS COLS [REPEATS [IMAGE_ROWS TEMPLATE_ROWS]]
//
// Prints one line of key=value, milliseconds per transform, best of REPEATS
// (default 10): r2c_float, c2r_float (the unmasked path: a forward transform
// per image and per template, an inverse per pair) and r2c_double,
// c2r_double (the masked path's). Plans are FFTW_MEASURE, as --fft-wisdom
// makes them; out of place, as tessera executes them. Inputs are not timed.
// With IMAGE_ROWS and TEMPLATE_ROWS also r2c_float_image and
// r2c_float_template: the forward transform as tessera runs it, skipping the
// rows that are zero (xcorr/fft_plans.hpp, forward()), for an image and a
// template of those heights.
#include <fftw3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "xcorr/fft_plans.hpp"

namespace {

template <class F> double best_ms(int repeats, F&& f) {
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// FFTW_MEASURE overwrites the arrays while planning: fill them afterwards.
template <class R, class C> void fill(R* r, std::size_t nr, C* c, std::size_t nc) {
  for (std::size_t i = 0; i < nr; ++i) r[i] = R((i * 2654435761u) % 1000) * R(1e-3);
  for (std::size_t i = 0; i < nc; ++i) {
    c[i][0] = R((i * 40503u) % 1000) * R(1e-3);
    c[i][1] = R((i * 9973u) % 1000) * R(1e-3);
  }
}

// FFTW's single- and double-precision interfaces under one set of names.
struct Single {
  using R = float;
  using C = fftwf_complex;
  using Plan = fftwf_plan;
  static R* alloc_real(std::size_t n) { return fftwf_alloc_real(n); }
  static C* alloc_complex(std::size_t n) { return fftwf_alloc_complex(n); }
  static void free(void* p) { fftwf_free(p); }
  static Plan r2c(int n0, int n1, R* r, C* c) { return fftwf_plan_dft_r2c_2d(n0, n1, r, c, FFTW_MEASURE); }
  static Plan c2r(int n0, int n1, C* c, R* r) { return fftwf_plan_dft_c2r_2d(n0, n1, c, r, FFTW_MEASURE); }
  static void run_r2c(Plan p, R* r, C* c) { fftwf_execute_dft_r2c(p, r, c); }
  static void run_c2r(Plan p, C* c, R* r) { fftwf_execute_dft_c2r(p, c, r); }
  static void destroy(Plan p) { fftwf_destroy_plan(p); }
};
struct Double {
  using R = double;
  using C = fftw_complex;
  using Plan = fftw_plan;
  static R* alloc_real(std::size_t n) { return fftw_alloc_real(n); }
  static C* alloc_complex(std::size_t n) { return fftw_alloc_complex(n); }
  static void free(void* p) { fftw_free(p); }
  static Plan r2c(int n0, int n1, R* r, C* c) { return fftw_plan_dft_r2c_2d(n0, n1, r, c, FFTW_MEASURE); }
  static Plan c2r(int n0, int n1, C* c, R* r) { return fftw_plan_dft_c2r_2d(n0, n1, c, r, FFTW_MEASURE); }
  static void run_r2c(Plan p, R* r, C* c) { fftw_execute_dft_r2c(p, r, c); }
  static void run_c2r(Plan p, C* c, R* r) { fftw_execute_dft_c2r(p, c, r); }
  static void destroy(Plan p) { fftw_destroy_plan(p); }
};

// The best forward and inverse times (ms) of one precision. The inverse
// destroys its input: a fresh copy before each run (the copy is not timed).
template <class F> std::pair<double, double> forward_inverse_ms(int rows, int cols, int repeats) {
  const std::size_t nr = std::size_t(rows) * std::size_t(cols), nc = std::size_t(rows) * std::size_t(cols / 2 + 1);
  typename F::R* r = F::alloc_real(nr);
  typename F::C* c = F::alloc_complex(nc);
  typename F::C* c_in = F::alloc_complex(nc);
  const typename F::Plan fwd = F::r2c(rows, cols, r, c), inv = F::c2r(rows, cols, c, r);
  fill(r, nr, c_in, nc);
  const double forward = best_ms(repeats, [&] { F::run_r2c(fwd, r, c); });
  double inverse = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    std::copy(c_in[0], c_in[0] + 2 * nc, c[0]);
    inverse = std::min(inverse, best_ms(1, [&] { F::run_c2r(inv, c, r); }));
  }
  F::destroy(fwd);
  F::destroy(inv);
  F::free(r);
  F::free(c);
  F::free(c_in);
  return {forward, inverse};
}

// The pruned forward transform of an array whose first `data_rows` rows hold
// data (float, FFTW_MEASURE): the best time (ms).
double pruned_forward_ms(int rows, int cols, int data_rows, int repeats) {
  const std::size_t nr = std::size_t(rows) * std::size_t(cols), nc = std::size_t(rows) * std::size_t(cols / 2 + 1);
  float* r = fftwf_alloc_real(nr);
  fftwf_complex* c = fftwf_alloc_complex(nc);
  const fftwf_plan full = fftwf_plan_dft_r2c_2d(rows, cols, r, c, FFTW_MEASURE);
  tessera::xcorr::ForwardPlansF f = tessera::xcorr::plan_forward(rows, cols, r, c, FFTW_MEASURE);
  fill(r, nr, c, nc);
  std::fill(r + std::size_t(std::min(data_rows, rows)) * std::size_t(cols), r + nr, 0.0f);
  const double ms = best_ms(repeats, [&] { tessera::xcorr::forward(f, full, rows, cols, data_rows, r, c); });
  tessera::xcorr::destroy_forward(f);
  fftwf_destroy_plan(full);
  fftwf_free(r);
  fftwf_free(c);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc == 5 || argc > 6) {
    std::fprintf(stderr, "usage: xcorr_fft_floor ROWS COLS [REPEATS [IMAGE_ROWS TEMPLATE_ROWS]]\n");
    return 2;
  }
  const int rows = std::atoi(argv[1]), cols = std::atoi(argv[2]);
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 10;
  if (rows < 2 || cols < 2 || repeats < 1) {
    std::fprintf(stderr, "xcorr_fft_floor: ROWS and COLS must be >= 2 and REPEATS >= 1\n");
    return 2;
  }
  const auto [r2c_f, c2r_f] = forward_inverse_ms<Single>(rows, cols, repeats);
  const auto [r2c_d, c2r_d] = forward_inverse_ms<Double>(rows, cols, repeats);
  std::printf("rows=%d cols=%d r2c_float=%.3f c2r_float=%.3f r2c_double=%.3f c2r_double=%.3f", rows, cols, r2c_f,
              c2r_f, r2c_d, c2r_d);
  if (argc == 6) {
    const int image_rows = std::atoi(argv[4]), template_rows = std::atoi(argv[5]);
    if (image_rows < 1 || template_rows < 1) {
      std::fprintf(stderr, "\nxcorr_fft_floor: IMAGE_ROWS and TEMPLATE_ROWS must be >= 1\n");
      return 2;
    }
    std::printf(" r2c_float_image=%.3f r2c_float_template=%.3f", pruned_forward_ms(rows, cols, image_rows, repeats),
                pruned_forward_ms(rows, cols, template_rows, repeats));
  }
  std::printf("\n");
  return 0;
}

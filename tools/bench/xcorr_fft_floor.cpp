// xcorr_fft_floor: how long FFTW's transforms of one padded size take on one
// core, the part of `tessera xcorr` that no change outside FFTW can remove.
// bench_xcorr.py runs it for the run's size (the output's fft_size) and turns
// the times into the fastest the command could be if everything but the
// transforms took no time (a bound, not an estimate). A measurement program,
// not a test.
//
//   xcorr_fft_floor ROWS COLS [REPEATS]
//
// Prints one line of key=value, milliseconds per transform, best of REPEATS
// (default 10): r2c_float, c2r_float (the unmasked path: a forward transform
// per image and per template, an inverse per pair) and r2c_double,
// c2r_double (the masked path's). Plans are FFTW_MEASURE, as --fft-wisdom
// makes them; out of place, as tessera executes them. Inputs are not timed.
#include <fftw3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>

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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: xcorr_fft_floor ROWS COLS [REPEATS]\n");
    return 2;
  }
  const int rows = std::atoi(argv[1]), cols = std::atoi(argv[2]);
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 10;
  if (rows < 2 || cols < 2 || repeats < 1) {
    std::fprintf(stderr, "xcorr_fft_floor: ROWS and COLS must be >= 2 and REPEATS >= 1\n");
    return 2;
  }
  const std::size_t nr = std::size_t(rows) * std::size_t(cols), nc = std::size_t(rows) * std::size_t(cols / 2 + 1);

  float* rf = fftwf_alloc_real(nr);
  fftwf_complex* cf = fftwf_alloc_complex(nc);
  fftwf_complex* cf_in = fftwf_alloc_complex(nc);
  fftwf_plan f_r2c = fftwf_plan_dft_r2c_2d(rows, cols, rf, cf, FFTW_MEASURE);
  fftwf_plan f_c2r = fftwf_plan_dft_c2r_2d(rows, cols, cf, rf, FFTW_MEASURE);
  fill(rf, nr, cf_in, nc);
  const double r2c_f = best_ms(repeats, [&] { fftwf_execute_dft_r2c(f_r2c, rf, cf); });
  // c2r destroys its input: a fresh copy before each (the copy is not timed).
  double c2r_f = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    std::copy(cf_in[0], cf_in[0] + 2 * nc, cf[0]);
    c2r_f = std::min(c2r_f, best_ms(1, [&] { fftwf_execute_dft_c2r(f_c2r, cf, rf); }));
  }

  double* rd = fftw_alloc_real(nr);
  fftw_complex* cd = fftw_alloc_complex(nc);
  fftw_complex* cd_in = fftw_alloc_complex(nc);
  fftw_plan d_r2c = fftw_plan_dft_r2c_2d(rows, cols, rd, cd, FFTW_MEASURE);
  fftw_plan d_c2r = fftw_plan_dft_c2r_2d(rows, cols, cd, rd, FFTW_MEASURE);
  fill(rd, nr, cd_in, nc);
  const double r2c_d = best_ms(repeats, [&] { fftw_execute_dft_r2c(d_r2c, rd, cd); });
  double c2r_d = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    std::copy(cd_in[0], cd_in[0] + 2 * nc, cd[0]);
    c2r_d = std::min(c2r_d, best_ms(1, [&] { fftw_execute_dft_c2r(d_c2r, cd, rd); }));
  }

  std::printf("rows=%d cols=%d r2c_float=%.3f c2r_float=%.3f r2c_double=%.3f c2r_double=%.3f\n", rows, cols, r2c_f,
              c2r_f, r2c_d, c2r_d);
  fftwf_destroy_plan(f_r2c);
  fftwf_destroy_plan(f_c2r);
  fftw_destroy_plan(d_r2c);
  fftw_destroy_plan(d_c2r);
  fftwf_free(rf);
  fftwf_free(cf);
  fftwf_free(cf_in);
  fftw_free(rd);
  fftw_free(cd);
  fftw_free(cd_in);
  return 0;
}

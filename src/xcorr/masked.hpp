// Internal to src/xcorr: masked ZNCC (core/zncc_masked.hpp) of a pair in which
// the image or the template (or both) has a mask with at least one invalid
// pixel. A pair whose masks are all valid (or absent) never comes here: it
// takes the unmasked path, so its bits are today's.
//
// The six sums of core::zncc_masked are correlations of the image's arrays
//   a0 = M_I,  a1 = M_I (I - c),  a2 = M_I (I - c)^2
// with the template's arrays
//   b0 = M_T,  b1 = M_T (T - tbar),  b2 = M_T (T - tbar)^2
// (c, tbar: the means over the valid pixels; M = 1 where valid, 0 elsewhere and
// outside the image):  n = a0*b0, si = a1*b0, si2 = a2*b0, st = a0*b1,
// st2 = a0*b2, sit = a1*b1.  Padfield's masked normalised cross-correlation
// computes them by FFT; here every one is double precision (so the variance
// terms are accurate to double precision and n, a count, is exact after
// rounding), and a side without a mask turns the sums it shares into rect sums
// of prefix tables (exact as today's windows) instead of transforms:
//   template unmasked (b0 = a box): n, si, si2 are box sums of a0, a1, a2;
//   image unmasked (a0 = the image's support): n, st, st2 are rect sums of
//   b0, b1, b2 over the part of the template inside the image.
// Those rect sums depend on one side and the other's shape only, so they are
// kept (with the variance term) per shape and region, as the unmasked path's
// window tables, and shared by all the side's pairs. So a pair with one masked
// side needs three inverse transforms, one with two masked sides six; each
// spectrum (three per side at most, per FFT size) is computed once per image
// and, when cached, once per template.
#pragma once

#include <fftw3.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "xcorr.hpp"

namespace tessera::xcorr::detail {

struct FftwDoubleFree {
  void operator()(void* p) const { fftw_free(p); }
};
using DoubleSpectrum = std::unique_ptr<fftw_complex[], FftwDoubleFree>;

// One side (image or template) of the masked correlation: its arrays k = 0, 1,
// 2 (above) as prefix tables and norms, and their spectra once computed.
class MaskedSide {
 public:
  // pix: rows x cols, row-major; mask: the same shape, nonzero = valid, or
  // nullptr (every pixel valid). flip: the template side (its arrays enter the
  // transform flipped, as PreparedTemplate's). cache: keep the spectra (always
  // for an image; for a template as PreparedTemplate's cache_spectra).
  MaskedSide(const float* pix, const std::uint8_t* mask, int rows, int cols, bool flip, bool cache);

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  // Some pixel is invalid (else the pair takes the unmasked path, or, beside a
  // masked other side, this side's sums are rect sums).
  bool masked() const { return masked_; }
  double count() const { return count_; }  // valid pixels
  double mean() const { return mean_; }    // over the valid pixels
  // Array k's 1-norm and 2-norm, and the largest |value - mean| of a valid pixel.
  double norm1(int k) const { return norm1_[k]; }
  double norm2(int k) const { return norm2_[k]; }
  double max_abs() const { return max_abs_; }
  // (rows+1) x (cols+1) prefix table of array k.
  const double* prefix(int k) const { return prefix_[k].data(); }
  // Array k's values along row r (0 where invalid) into out[0, cols).
  void row_values(int k, int r, double* out) const;
  // The spectrum of array k zero-padded (and flipped for a template) to
  // size py x px; cached ones stay, others go to *scratch_spec. scratch: py*px.
  // wisdom: plan from imported wisdom (Options::fft_from_wisdom).
  const fftw_complex* spectrum(int k, int py, int px, double* scratch, fftw_complex* scratch_spec,
                               bool wisdom) const;
  // Array k zero-padded (and flipped for a template) to py x px, into out: what
  // spectrum() transforms. With zero_rows_to >= 0, only the rows before it
  // (the rest are not read).
  void fill_padded(int k, int py, int px, double* out, int zero_rows_to = -1) const;

  // The sums of this side's arrays that a pair with an unmasked other side of
  // other_rows x other_cols takes from prefix tables, over region r of the map,
  // row-major (r's width a row): for an image, over each placement's window
  // (a template of that shape); for a template, over its part inside an image
  // of that shape. n: the count; s: the sum of array 1; var: the variance term
  // (core::zncc_masked_variance); e1, e2: bounds on the rounding of s and of
  // the sum of array 2.
  struct Windows {
    std::vector<double> n, s, var;
    double e1 = 0, e2 = 0;
  };
  void compute_windows(int other_rows, int other_cols, Region r, Windows& out) const;
  // Map row y of compute_windows, columns [r.x0, r.x1], into n, s and var.
  // For a template, the row depends on y only through the template rows
  // inside the image: window_row_key(y) tells when it changes.
  void window_row(int other_rows, int other_cols, int y, Region r, double* n, double* s, double* var) const;
  long long window_row_key(int other_rows, int y) const;
  // The bounds e1, e2 of compute_windows.
  double window_bound(int k) const;
  // compute_windows once per shape and region, kept (an image's, shared by
  // its pairs). A template's would take a map's worth of memory per template:
  // the final pass computes its rows as it goes (window_row), once for all the
  // rows where the template lies inside the image vertically.
  const Windows& windows(int other_rows, int other_cols, Region r) const;
  std::size_t bytes() const;

 private:
  int rows_, cols_;
  bool flip_, cache_, masked_ = false;
  std::vector<float> pix_;
  std::vector<std::uint8_t> valid_;
  double count_ = 0, mean_ = 0, max_abs_ = 0;
  std::array<double, 3> norm1_{}, norm2_{};
  std::array<std::vector<double>, 3> prefix_;
  mutable std::mutex mutex_;
  mutable std::map<std::array<int, 3>, DoubleSpectrum> spectra_;  // (k, py, px)
  mutable std::mutex windows_mutex_;
  mutable std::map<std::array<int, 6>, Windows> windows_;  // (other shape, region)
};

// A correlation done elsewhere (the GPU backend, cuda/xcorr_masked_cuda.hpp):
// out (py x px) = the inverse transform of FFT(a) * FFT(b) / (py * px) for the
// padded arrays a (image) and b (template, flipped).
using MaskedCorrelate = std::function<void(const double* a, const double* b, int py, int px, double* out)>;

// Double-precision FFT buffers of one thread for the masked path: up to six
// transform outputs (n, si, si2, st2, st, sit), each made on first use.
struct MaskedBuffers {
  int py = 0, px = 0;
  std::array<std::unique_ptr<double[], FftwDoubleFree>, 6> real;
  DoubleSpectrum product, scratch_spec;
  MaskedSide::Windows template_row;  // one row of a masked template's windows (final pass)
  // Set: the correlations go to it (the padded arrays in `padded`), not to FFTW.
  MaskedCorrelate correlate;
  std::array<std::vector<double>, 2> padded;
  void ensure(int py, int px);
  double* output(int slot);  // real[slot], allocated for py x px when new
};

// R of the masked ZNCC over region r of the full map, row-major with row stride
// `stride` into out (out[(y - r.y0) * stride + (x - r.x0)]). At least one side
// masked; template no larger than the image. options: eps, min_overlap and
// fft_from_wisdom.
void masked_region(const MaskedSide& image, const MaskedSide& templ, Region r, const Options& options,
                   MaskedBuffers& buffers, float* out, long long stride);

}  // namespace tessera::xcorr::detail

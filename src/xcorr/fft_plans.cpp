#include "fft_plans.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace tessera::xcorr {
namespace {

struct Free {
  void operator()(void* p) const { fftw_free(p); }
};

// Plans (and destroys) the forward and inverse transforms of one size with
// `flags`, and the row and column plans of the pruned forward transform
// (plan_forward); false when FFTW returns no plan (WISDOM_ONLY without wisdom).
template <bool Double> bool plan_size(int rows, int cols, unsigned flags) {
  const std::size_t nr = std::size_t(rows) * std::size_t(cols), nc = std::size_t(rows) * std::size_t(cols / 2 + 1);
  if constexpr (Double) {
    std::unique_ptr<double, Free> r(static_cast<double*>(fftw_malloc(sizeof(double) * nr)));
    std::unique_ptr<fftw_complex, Free> c(static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * nc)));
    fftw_plan f = fftw_plan_dft_r2c_2d(rows, cols, r.get(), c.get(), flags);
    fftw_plan b = fftw_plan_dft_c2r_2d(rows, cols, c.get(), r.get(), flags);
    ForwardPlansD p = plan_forward(rows, cols, r.get(), c.get(), flags);
    const bool ok = f && b && p.made(rows);
    if (f) fftw_destroy_plan(f);
    if (b) fftw_destroy_plan(b);
    destroy_forward(p);
    return ok;
  } else {
    std::unique_ptr<float, Free> r(static_cast<float*>(fftwf_malloc(sizeof(float) * nr)));
    std::unique_ptr<fftwf_complex, Free> c(static_cast<fftwf_complex*>(fftwf_malloc(sizeof(fftwf_complex) * nc)));
    fftwf_plan f = fftwf_plan_dft_r2c_2d(rows, cols, r.get(), c.get(), flags);
    fftwf_plan b = fftwf_plan_dft_c2r_2d(rows, cols, c.get(), r.get(), flags);
    ForwardPlansF p = plan_forward(rows, cols, r.get(), c.get(), flags);
    InversePlansF q = plan_inverse(rows, cols, c.get(), r.get(), flags);
    const bool ok = f && b && p.made(rows) && q.made(rows);
    if (f) fftwf_destroy_plan(f);
    if (b) fftwf_destroy_plan(b);
    destroy_forward(p);
    destroy_inverse(q);
    return ok;
  }
}

// plan_forward for either precision: a plan of kForwardRowBlock row
// transforms (rows px apart in, px/2+1 apart out) and one of the px/2+1
// column transforms (in place, rows px/2+1 apart). Both or neither.
template <class Plans, class R, class C, class PlanRows, class PlanCols, class Destroy>
Plans plan_forward_any(int py, int px, R* r, C* c, unsigned flags, PlanRows plan_rows, PlanCols plan_cols,
                       Destroy destroy) {
  const int nc = px / 2 + 1;
  Plans p;
  if (py < kForwardRowBlock) return p;
  int n1[1] = {px}, n0[1] = {py};
  p.rows = plan_rows(1, n1, kForwardRowBlock, r, nullptr, 1, px, c, nullptr, 1, nc, flags);
  p.cols = plan_cols(1, n0, nc, c, nullptr, nc, 1, c, nullptr, nc, 1, FFTW_FORWARD, flags);
  if (!p.rows || !p.cols) {
    if (p.rows) destroy(p.rows);
    if (p.cols) destroy(p.cols);
    p = Plans{};
  }
  return p;
}

template <class Plans, class R, class C, class Full, class ExecRows, class ExecCols, class ExecFull>
void forward_any(const Plans& f, Full full, int py, int px, int rows, R* in, C* out, ExecRows exec_rows,
                 ExecCols exec_cols, ExecFull exec_full) {
  const int read = forward_rows_read(py, rows);
  if (!f.rows || read == py) {
    exec_full(full, in, out);
    return;
  }
  const std::size_t nc = std::size_t(px / 2 + 1);
  for (int y = 0; y < read; y += kForwardRowBlock)
    exec_rows(f.rows, in + std::size_t(y) * std::size_t(px), out + std::size_t(y) * nc);
  std::memset(static_cast<void*>(out + std::size_t(read) * nc), 0, sizeof(C) * std::size_t(py - read) * nc);
  exec_cols(f.cols, out, out);
}

std::string exported(char* text) {
  std::string s = text ? text : "";
  std::free(text);
  return s;
}

// Replaces this process's wisdom by w; false when either text is not wisdom.
bool import_wisdom(const FftWisdom& w) {
  fftwf_forget_wisdom();
  fftw_forget_wisdom();
  return (w.single.empty() || fftwf_import_wisdom_from_string(w.single.c_str())) &&
         (w.dbl.empty() || fftw_import_wisdom_from_string(w.dbl.c_str()));
}

}  // namespace

int forward_rows_read(int py, int rows) {
  const int blocks = (std::max(rows, 1) + kForwardRowBlock - 1) / kForwardRowBlock;
  const long long read = (long long)blocks * kForwardRowBlock;
  return read < py ? int(read) : py;
}

ForwardPlansF plan_forward(int py, int px, float* r, fftwf_complex* c, unsigned flags) {
  return plan_forward_any<ForwardPlansF>(py, px, r, c, flags, fftwf_plan_many_dft_r2c, fftwf_plan_many_dft,
                                         fftwf_destroy_plan);
}
ForwardPlansD plan_forward(int py, int px, double* r, fftw_complex* c, unsigned flags) {
  return plan_forward_any<ForwardPlansD>(py, px, r, c, flags, fftw_plan_many_dft_r2c, fftw_plan_many_dft,
                                         fftw_destroy_plan);
}
void destroy_forward(ForwardPlansF& f) {
  if (f.rows) fftwf_destroy_plan(f.rows);
  if (f.cols) fftwf_destroy_plan(f.cols);
  f = {};
}
void destroy_forward(ForwardPlansD& f) {
  if (f.rows) fftw_destroy_plan(f.rows);
  if (f.cols) fftw_destroy_plan(f.cols);
  f = {};
}

void forward(const ForwardPlansF& f, fftwf_plan full, int py, int px, int rows, float* in, fftwf_complex* out) {
  forward_any(f, full, py, px, rows, in, out, fftwf_execute_dft_r2c, fftwf_execute_dft, fftwf_execute_dft_r2c);
}
void forward(const ForwardPlansD& f, fftw_plan full, int py, int px, int rows, double* in, fftw_complex* out) {
  forward_any(f, full, py, px, rows, in, out, fftw_execute_dft_r2c, fftw_execute_dft, fftw_execute_dft_r2c);
}

InversePlansF plan_inverse(int py, int px, fftwf_complex* c, float* r, unsigned flags) {
  const int nc = px / 2 + 1;
  InversePlansF p;
  if (py < kForwardRowBlock) return p;
  int n1[1] = {px}, n0[1] = {py};
  p.cols = fftwf_plan_many_dft(1, n0, nc, c, nullptr, nc, 1, c, nullptr, nc, 1, FFTW_BACKWARD, flags);
  p.rows = fftwf_plan_many_dft_c2r(1, n1, kForwardRowBlock, c, nullptr, 1, nc, r, nullptr, 1, px, flags);
  if (!p.rows || !p.cols) destroy_inverse(p);
  return p;
}

void destroy_inverse(InversePlansF& f) {
  if (f.rows) fftwf_destroy_plan(f.rows);
  if (f.cols) fftwf_destroy_plan(f.cols);
  f = {};
}

void inverse_rows(const InversePlansF& f, fftwf_plan full, int py, int px, int y0, int y1, fftwf_complex* in,
                  float* out) {
  const int b0 = y0 / kForwardRowBlock * kForwardRowBlock;
  const int b1 = (y1 / kForwardRowBlock + 1) * kForwardRowBlock;  // past the last block
  if (!f.rows || b1 > py || 8LL * (b1 - b0) > 7LL * py) {
    fftwf_execute_dft_c2r(full, in, out);
    return;
  }
  fftwf_execute_dft(f.cols, in, in);
  const std::size_t nc = std::size_t(px / 2 + 1);
  for (int y = b0; y < b1; y += kForwardRowBlock)
    fftwf_execute_dft_c2r(f.rows, in + std::size_t(y) * nc, out + std::size_t(y) * std::size_t(px));
}

std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

unsigned fft_planner_flags(bool from_wisdom) {
  return from_wisdom ? unsigned(FFTW_MEASURE | FFTW_WISDOM_ONLY) : unsigned(FFTW_ESTIMATE);
}

FftWisdom measure_fft_wisdom(std::span<const std::pair<int, int>> sizes, bool with_double, const FftWisdom& start) {
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  if (!import_wisdom(start)) throw std::invalid_argument("not FFTW wisdom (or of another FFTW version)");
  for (auto [rows, cols] : sizes) {
    plan_size<false>(rows, cols, FFTW_MEASURE);
    if (with_double) plan_size<true>(rows, cols, FFTW_MEASURE);
  }
  return {exported(fftwf_export_wisdom_to_string()), exported(fftw_export_wisdom_to_string())};
}

bool fft_wisdom_covers(const FftWisdom& w, std::span<const std::pair<int, int>> sizes, bool with_double) {
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  if (!import_wisdom(w)) throw std::invalid_argument("not FFTW wisdom (or of another FFTW version)");
  const unsigned flags = FFTW_MEASURE | FFTW_WISDOM_ONLY;
  for (auto [rows, cols] : sizes)
    if (!plan_size<false>(rows, cols, flags) || (with_double && !plan_size<true>(rows, cols, flags))) return false;
  return true;
}

std::string import_fft_wisdom(const FftWisdom& w, std::span<const std::pair<int, int>> sizes, bool with_double) {
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  if (!import_wisdom(w)) return "not FFTW wisdom (or of another FFTW version)";
  const unsigned flags = FFTW_MEASURE | FFTW_WISDOM_ONLY;
  for (auto [rows, cols] : sizes)
    if (!plan_size<false>(rows, cols, flags) || (with_double && !plan_size<true>(rows, cols, flags)))
      return "has no usable plan for " + std::to_string(rows) + "x" + std::to_string(cols) +
             " on this CPU (made for other sizes or another kind of CPU?)";
  return {};
}

}  // namespace tessera::xcorr

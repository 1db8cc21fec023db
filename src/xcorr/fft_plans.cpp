#include "fft_plans.hpp"

#include <fftw3.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace tessera::xcorr {
namespace {

struct Free {
  void operator()(void* p) const { fftw_free(p); }
};

// Plans (and destroys) the forward and inverse transforms of one size with
// `flags`; false when FFTW returns no plan (WISDOM_ONLY without wisdom).
template <bool Double> bool plan_size(int rows, int cols, unsigned flags) {
  const std::size_t nr = std::size_t(rows) * std::size_t(cols), nc = std::size_t(rows) * std::size_t(cols / 2 + 1);
  if constexpr (Double) {
    std::unique_ptr<double, Free> r(static_cast<double*>(fftw_malloc(sizeof(double) * nr)));
    std::unique_ptr<fftw_complex, Free> c(static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * nc)));
    fftw_plan f = fftw_plan_dft_r2c_2d(rows, cols, r.get(), c.get(), flags);
    fftw_plan b = fftw_plan_dft_c2r_2d(rows, cols, c.get(), r.get(), flags);
    const bool ok = f && b;
    if (f) fftw_destroy_plan(f);
    if (b) fftw_destroy_plan(b);
    return ok;
  } else {
    std::unique_ptr<float, Free> r(static_cast<float*>(fftwf_malloc(sizeof(float) * nr)));
    std::unique_ptr<fftwf_complex, Free> c(static_cast<fftwf_complex*>(fftwf_malloc(sizeof(fftwf_complex) * nc)));
    fftwf_plan f = fftwf_plan_dft_r2c_2d(rows, cols, r.get(), c.get(), flags);
    fftwf_plan b = fftwf_plan_dft_c2r_2d(rows, cols, c.get(), r.get(), flags);
    const bool ok = f && b;
    if (f) fftwf_destroy_plan(f);
    if (b) fftwf_destroy_plan(b);
    return ok;
  }
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

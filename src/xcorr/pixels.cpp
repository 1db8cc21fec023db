#include "pixels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/fit_input.hpp"

namespace tessera::xcorr::detail {

void check_view(View v, const char* what) {
  if (v.height <= 0 || v.width <= 0 || !v.data)
    throw std::invalid_argument(std::string("xcorr: ") + what + " is empty (" +
                                std::to_string(v.height) + "x" + std::to_string(v.width) + ")");
  const std::size_t n = std::size_t(v.height) * std::size_t(v.width);
  if (const std::size_t i = core::first_nonfinite(v.data, n); i < n)
    throw std::invalid_argument(std::string("xcorr: ") + what + " has a non-finite value (" +
                                std::to_string(v.data[i]) + ") at (" + std::to_string(i / std::size_t(v.width)) +
                                ", " + std::to_string(i % std::size_t(v.width)) + ")");
}

// Eight interleaved accumulators of each, as one vector of doubles (GCC's
// vector extensions: the additions run eight at a time instead of waiting on
// one another), combined in a fixed order: the same bits every run.
PixelSums pixel_sums(const std::vector<float>& pix) {
  constexpr int L = 8;
  typedef double V __attribute__((vector_size(L * sizeof(double))));
  typedef float F __attribute__((vector_size(L * sizeof(float))));
  V s = {}, q = {}, a = {}, m = {};
  const std::size_t n = pix.size(), whole = n / L * L;
  for (std::size_t i = 0; i < whole; i += L) {
    F f;
    std::memcpy(&f, pix.data() + i, sizeof f);
    const V v = __builtin_convertvector(f, V);
    const V av = v < 0 ? -v : v;
    s += v;
    q += v * v;
    a += av;
    m = av > m ? av : m;
  }
  PixelSums r;
  for (int j = 0; j < L; ++j) {
    r.sum += s[j];
    r.squares += q[j];
    r.abs += a[j];
    r.max_abs = std::max(r.max_abs, m[j]);
  }
  for (std::size_t i = whole; i < n; ++i) {
    const double v = pix[i];
    r.sum += v;
    r.squares += v * v;
    r.abs += std::fabs(v);
    r.max_abs = std::max(r.max_abs, std::fabs(v));
  }
  return r;
}

bool has_invalid_pixel(View v) {
  const std::size_t n = std::size_t(v.height) * std::size_t(v.width);
  return v.mask && std::find(v.mask, v.mask + n, std::uint8_t(0)) != v.mask + n;
}

std::vector<std::uint8_t> kept_mask(View v) {
  if (!has_invalid_pixel(v)) return {};
  const std::size_t n = std::size_t(v.height) * std::size_t(v.width);
  std::vector<std::uint8_t> m(n);
  for (std::size_t i = 0; i < n; ++i) m[i] = v.mask[i] != 0;
  return m;
}

}  // namespace tessera::xcorr::detail

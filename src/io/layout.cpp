#include "layout.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

namespace tessera::io {

namespace {

// dst[c * rows + r] = src[r * cols + c], in tiles that stay in cache.
void transpose(const float* src, std::size_t rows, std::size_t cols, float* dst) {
  constexpr std::size_t tile = 32;
  for (std::size_t r0 = 0; r0 < rows; r0 += tile) {
    const std::size_t r1 = std::min(rows, r0 + tile);
    for (std::size_t c0 = 0; c0 < cols; c0 += tile) {
      const std::size_t c1 = std::min(cols, c0 + tile);
      for (std::size_t r = r0; r < r1; ++r)
        for (std::size_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
    }
  }
}

void check(const char* what, std::span<const float> in, std::size_t n_sweep, std::size_t n_pixels,
           std::span<float> out) {
  const std::size_t n = n_sweep * n_pixels;
  if (in.size() != n || out.size() != n)
    throw std::invalid_argument(std::string(what) + ": spans of " + std::to_string(in.size()) +
                                " and " + std::to_string(out.size()) + " values for " +
                                std::to_string(n_sweep) + " x " + std::to_string(n_pixels));
  const float* a = in.data();
  const float* b = out.data();
  if (n != 0 && std::less<const float*>()(a, b + n) && std::less<const float*>()(b, a + n))
    throw std::invalid_argument(std::string(what) + ": input and output overlap");
}

}  // namespace

void to_pixel_major(std::span<const float> slab, std::size_t n_sweep, std::size_t n_pixels,
                    std::span<float> out) {
  check("to_pixel_major", slab, n_sweep, n_pixels, out);
  transpose(slab.data(), n_sweep, n_pixels, out.data());
}

void to_sweep_major(std::span<const float> y, std::size_t n_sweep, std::size_t n_pixels,
                    std::span<float> out) {
  check("to_sweep_major", y, n_sweep, n_pixels, out);
  transpose(y.data(), n_pixels, n_sweep, out.data());
}

}  // namespace tessera::io

// Internal to src/xcorr: what preparing an image or a template does with its
// pixels before any transform: the checks, the sums the transform's centre
// and the flat-window bound are taken from, the kept mask, and the storage of
// a prefix table.
#pragma once

#include <cstdint>
#include <vector>

#include "core/no_init_vector.hpp"
#include "xcorr.hpp"

namespace tessera::xcorr::detail {

// Throws std::invalid_argument (naming `what` and the position) for an empty
// view or a non-finite value.
void check_view(View v, const char* what);

// Storage for an (H+1) x (W+1) prefix table, not initialised:
// core::zncc_prefix_sweep writes every entry (row 0, then each row's column 0
// and its running sums) before any is read.
template <class T> core::NoInitVector<T> table_storage(int H, int W) {
  return core::NoInitVector<T>((std::size_t(H) + 1) * (std::size_t(W) + 1));
}

// Sums over an image's pixels, in double: the mean (the transform's centre)
// and the magnitudes core::zncc_flat_bound takes.
struct PixelSums {
  double sum = 0, squares = 0, abs = 0, max_abs = 0;
};
PixelSums pixel_sums(const std::vector<float>& pix);

// Whether a view's mask has an invalid pixel (then its pairs take the masked path).
bool has_invalid_pixel(View v);
// A view's mask, 0/1, when it has an invalid pixel; else empty (no mask).
std::vector<std::uint8_t> kept_mask(View v);

}  // namespace tessera::xcorr::detail

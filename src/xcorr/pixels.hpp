// Internal to src/xcorr: what preparing an image or a template does with its
// pixels before any transform: the checks, the sums the transform's centre
// and the flat-window bound are taken from, the kept mask, and the storage of
// a prefix table.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "xcorr.hpp"

namespace tessera::xcorr::detail {

// Throws std::invalid_argument (naming `what` and the position) for an empty
// view or a non-finite value.
void check_view(View v, const char* what);

// An allocator that leaves value-initialised elements uninitialised: for
// storage whose every entry is written before it is read, which would
// otherwise be zeroed first (a 1024^2 image's two double prefix tables: 16 MB
// of memset an image).
template <class T> struct NoInitAllocator : std::allocator<T> {
  using value_type = T;
  template <class U> struct rebind {
    using other = NoInitAllocator<U>;
  };
  NoInitAllocator() = default;
  template <class U> NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
  template <class U> void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... A> void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};
template <class T> using TableVector = std::vector<T, NoInitAllocator<T>>;

// Storage for an (H+1) x (W+1) prefix table, not initialised:
// core::zncc_prefix_sweep writes every entry (row 0, then each row's column 0
// and its running sums) before any is read.
template <class T> TableVector<T> table_storage(int H, int W) {
  return TableVector<T>((std::size_t(H) + 1) * (std::size_t(W) + 1));
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

// std::vector storage whose elements are left uninitialised when it grows:
// for buffers whose every element is written before it is read (prefix
// tables that a sweep fills, frames that an HDF5 read fills), which a plain
// std::vector would zero first: a pass over the memory for nothing (16 MB a
// 1024^2 image's two double prefix tables, 4 MB each image read).
#pragma once

#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace tessera::core {

template <class T> struct NoInitAllocator : std::allocator<T> {
  using value_type = T;
  template <class U> struct rebind {
    using other = NoInitAllocator<U>;
  };
  NoInitAllocator() = default;
  template <class U> NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
  // Value-initialisation (what resize() and the size constructor ask for)
  // becomes default-initialisation: nothing, for arithmetic types.
  template <class U> void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... A> void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};

template <class T> using NoInitVector = std::vector<T, NoInitAllocator<T>>;

}  // namespace tessera::core

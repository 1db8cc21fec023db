// Arrays handed to the library: a read-only view of memory the caller owns, of
// any numeric element type, with byte strides (numpy's convention, so a Python
// array is viewed without a copy whatever its layout).
//
// Values are converted to float as HDF5 converts a dataset read into float
// memory (a C conversion: round to nearest), so an array in memory and the same
// array in a file give the library the same bits.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera::api {

enum class DType { int8, uint8, int16, uint16, int32, uint32, int64, uint64, float32, float64 };

std::size_t dtype_size(DType type);
std::string dtype_name(DType type);  // "float32", ...

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<std::int8_t>() { return DType::int8; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::uint8; }
template <> constexpr DType dtype_of<std::int16_t>() { return DType::int16; }
template <> constexpr DType dtype_of<std::uint16_t>() { return DType::uint16; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::int32; }
template <> constexpr DType dtype_of<std::uint32_t>() { return DType::uint32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::int64; }
template <> constexpr DType dtype_of<std::uint64_t>() { return DType::uint64; }
template <> constexpr DType dtype_of<float>() { return DType::float32; }
template <> constexpr DType dtype_of<double>() { return DType::float64; }

// An N-dimensional view: element (i0, i1, ...) is at data + sum(i_k * strides[k])
// bytes. A default-constructed view is "absent" (optional inputs).
template <int N>
struct ArrayView {
  const void* data = nullptr;
  DType type = DType::float32;
  std::array<std::int64_t, N> shape{};
  std::array<std::int64_t, N> strides{};  // in bytes; may be negative or zero

  bool present() const { return data != nullptr; }
  std::int64_t size() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }

  // A C-contiguous (row-major) view of p.
  template <class T>
  static ArrayView contiguous(const T* p, std::array<std::int64_t, N> shape) {
    ArrayView v;
    v.data = p;
    v.type = dtype_of<T>();
    v.shape = shape;
    std::int64_t s = sizeof(T);
    for (int k = N - 1; k >= 0; --k) {
      v.strides[std::size_t(k)] = s;
      s *= shape[std::size_t(k)];
    }
    return v;
  }
};

using Array1 = ArrayView<1>;
using Array2 = ArrayView<2>;
using Array3 = ArrayView<3>;

// Converts n elements of `type` that lie `stride` bytes apart, starting at p,
// to float (out[i]) or to double; a C conversion, as HDF5's.
void convert_to_float(const void* p, DType type, std::int64_t stride, std::int64_t n, float* out);
void convert_to_double(const void* p, DType type, std::int64_t stride, std::int64_t n, double* out);
// The same to int64 for index arrays; throws std::invalid_argument for a
// floating-point type (indices must be integers).
void convert_to_int64(const void* p, DType type, std::int64_t stride, std::int64_t n, std::int64_t* out);

// Element address helpers.
inline const std::byte* element(const void* base, std::int64_t offset_bytes) {
  return static_cast<const std::byte*>(base) + offset_bytes;
}

}  // namespace tessera::api

#include "array.hpp"

#include <stdexcept>

namespace tessera::api {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::int8: case DType::uint8: return 1;
    case DType::int16: case DType::uint16: return 2;
    case DType::int32: case DType::uint32: case DType::float32: return 4;
    case DType::int64: case DType::uint64: case DType::float64: return 8;
  }
  return 0;
}

std::string dtype_name(DType t) {
  switch (t) {
    case DType::int8: return "int8";
    case DType::uint8: return "uint8";
    case DType::int16: return "int16";
    case DType::uint16: return "uint16";
    case DType::int32: return "int32";
    case DType::uint32: return "uint32";
    case DType::int64: return "int64";
    case DType::uint64: return "uint64";
    case DType::float32: return "float32";
    case DType::float64: return "float64";
  }
  return "unknown";
}

namespace {

template <class Out, class F>
void visit_type(DType t, F&& f) {
  switch (t) {
    case DType::int8: return f(std::int8_t{});
    case DType::uint8: return f(std::uint8_t{});
    case DType::int16: return f(std::int16_t{});
    case DType::uint16: return f(std::uint16_t{});
    case DType::int32: return f(std::int32_t{});
    case DType::uint32: return f(std::uint32_t{});
    case DType::int64: return f(std::int64_t{});
    case DType::uint64: return f(std::uint64_t{});
    case DType::float32: return f(float{});
    case DType::float64: return f(double{});
  }
}

template <class Out>
void convert(const void* p, DType type, std::int64_t stride, std::int64_t n, Out* out) {
  visit_type<Out>(type, [&](auto tag) {
    using T = decltype(tag);
    const std::byte* b = static_cast<const std::byte*>(p);
    if (stride == std::int64_t(sizeof(T))) {
      const T* s = reinterpret_cast<const T*>(b);
      for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<Out>(s[i]);
    } else {
      for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<Out>(*reinterpret_cast<const T*>(b + i * stride));
    }
  });
}

}  // namespace

void convert_to_float(const void* p, DType type, std::int64_t stride, std::int64_t n, float* out) {
  convert(p, type, stride, n, out);
}

void convert_to_double(const void* p, DType type, std::int64_t stride, std::int64_t n, double* out) {
  convert(p, type, stride, n, out);
}

void convert_to_int64(const void* p, DType type, std::int64_t stride, std::int64_t n, std::int64_t* out) {
  if (type == DType::float32 || type == DType::float64)
    throw std::invalid_argument("index arrays must hold integers, got " + dtype_name(type));
  convert(p, type, stride, n, out);
}

}  // namespace tessera::api

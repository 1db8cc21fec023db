// NumPy's .npy files (format versions 1, 2 and 3), read without numpy: the
// header (dtype, order, shape) and the values, mapped from the file. Used by
// `tessera import npy` and for sweep files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tessera::io {

struct NpyArray {
  std::string path;
  char kind = 'f';              // 'f' float, 'i' signed, 'u' unsigned integer, 'b' bool
  int item_size = 4;            // bytes per value
  bool big_endian = false;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  std::string descr;            // as written: "<f4", "|u1", ...
  std::uint64_t data_offset = 0;  // bytes from the start of the file

  [[nodiscard]] std::int64_t elements() const;
  // Element strides (in values, not bytes) of each dimension.
  [[nodiscard]] std::vector<std::int64_t> strides() const;
};

// Reads and checks the header: the magic string, a dictionary with 'descr',
// 'fortran_order' and 'shape', a numeric dtype, and a file long enough for
// every value. Throws io::Error, one line naming the file.
NpyArray read_npy_header(const std::string& path);

// The file's values, mapped read-only (the pages are read when touched and
// can be dropped again by the kernel: a cube larger than memory is fine).
class NpyMapping {
 public:
  explicit NpyMapping(const NpyArray& array);
  ~NpyMapping();
  NpyMapping(const NpyMapping&) = delete;
  NpyMapping& operator=(const NpyMapping&) = delete;
  // Value k (in storage order) as double: exact for every type but 64-bit
  // integers beyond 2^53.
  [[nodiscard]] double value(std::int64_t k) const;
  // The bytes of value k, in native byte order (swapped when the file is big-endian).
  void copy_native(std::int64_t k, void* out) const;

 private:
  const NpyArray& a_;
  const unsigned char* base_ = nullptr;
  std::size_t length_ = 0;
};

// A 1-D array of any numeric type as double (a sweep saved with np.save).
std::vector<double> read_npy_vector(const std::string& path);

}  // namespace tessera::io

#include "npy.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <fstream>

#include "error.hpp"

namespace tessera::io {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

// The text after 'key': in a header dictionary, up to the next top-level comma.
std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
  for (const char q : {'\'', '"'}) {
    const std::string k = std::string(1, q) + key + q;
    const std::size_t at = header.find(k);
    if (at == std::string::npos) continue;
    std::size_t i = header.find(':', at + k.size());
    if (i == std::string::npos) break;
    ++i;
    while (i < header.size() && std::isspace(static_cast<unsigned char>(header[i]))) ++i;
    int depth = 0;
    std::size_t j = i;
    for (; j < header.size(); ++j) {
      const char c = header[j];
      if (c == '(' || c == '[') ++depth;
      else if (c == ')' || c == ']') --depth;
      else if ((c == ',' || c == '}') && depth == 0) break;
    }
    std::string v = header.substr(i, j - i);
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    return v;
  }
  fail(path, "not a .npy file: its header has no '" + key + "'");
}

}  // namespace

std::int64_t NpyArray::elements() const {
  std::int64_t n = 1;
  for (const std::int64_t d : shape) n *= d;
  return n;
}

std::vector<std::int64_t> NpyArray::strides() const {
  std::vector<std::int64_t> s(shape.size(), 1);
  const int r = int(shape.size());
  if (fortran_order)
    for (int d = 1; d < r; ++d) s[std::size_t(d)] = s[std::size_t(d - 1)] * shape[std::size_t(d - 1)];
  else
    for (int d = r - 2; d >= 0; --d) s[std::size_t(d)] = s[std::size_t(d + 1)] * shape[std::size_t(d + 1)];
  return s;
}

NpyArray read_npy_header(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open the file");
  NpyArray a;
  a.path = path;
  unsigned char pre[10] = {};
  f.read(reinterpret_cast<char*>(pre), 10);
  if (f.gcount() < 10 || std::memcmp(pre, "\x93NUMPY", 6) != 0) fail(path, "not a .npy file (no \\x93NUMPY magic)");
  const int major = pre[6];
  std::uint64_t header_len = 0, prefix = 10;
  if (major == 1) {
    header_len = pre[8] | (std::uint64_t(pre[9]) << 8);
  } else if (major == 2 || major == 3) {
    unsigned char more[2] = {};
    f.read(reinterpret_cast<char*>(more), 2);
    if (f.gcount() < 2) fail(path, "truncated .npy header");
    header_len = pre[8] | (std::uint64_t(pre[9]) << 8) | (std::uint64_t(more[0]) << 16) | (std::uint64_t(more[1]) << 24);
    prefix = 12;
  } else {
    fail(path, ".npy format version " + std::to_string(major) + " is not known (1, 2 or 3)");
  }
  if (header_len > (1u << 20)) fail(path, "implausible .npy header length " + std::to_string(header_len));
  std::string header(header_len, '\0');
  f.read(header.data(), std::streamsize(header_len));
  if (std::uint64_t(f.gcount()) != header_len) fail(path, "truncated .npy header");
  a.data_offset = prefix + header_len;

  std::string descr = dict_value(header, "descr", path);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"')) fail(path, "dtype " + descr + " is not numeric");
  descr = descr.substr(1, descr.size() - 2);
  a.descr = descr;
  if (descr.size() < 3) fail(path, "dtype '" + descr + "' is not numeric");
  const char order = descr[0];
  a.kind = descr[1];
  a.item_size = std::atoi(descr.c_str() + 2);
  a.big_endian = order == '>' || (order == '!');
  const bool numeric = (a.kind == 'f' && (a.item_size == 4 || a.item_size == 8)) ||
                       ((a.kind == 'i' || a.kind == 'u') &&
                        (a.item_size == 1 || a.item_size == 2 || a.item_size == 4 || a.item_size == 8)) ||
                       (a.kind == 'b' && a.item_size == 1);
  if (!numeric || (order != '<' && order != '>' && order != '|' && order != '=' && order != '!'))
    fail(path, "dtype '" + descr + "' is not one tessera reads (float32/64, 8- to 64-bit integers, bool)");

  const std::string fo = dict_value(header, "fortran_order", path);
  if (fo != "True" && fo != "False") fail(path, "fortran_order is '" + fo + "', expected True or False");
  a.fortran_order = fo == "True";

  const std::string shape = dict_value(header, "shape", path);
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') fail(path, "shape '" + shape + "' is not a tuple");
  std::string num;
  for (std::size_t i = 1; i < shape.size(); ++i) {
    const char c = shape[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      num += c;
    } else if (c == ',' || c == ')') {
      if (!num.empty()) a.shape.push_back(std::stoll(num));
      num.clear();
    } else if (!std::isspace(static_cast<unsigned char>(c)) && c != 'L') {
      fail(path, "shape '" + shape + "' is not a tuple of sizes");
    }
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) fail(path, "cannot read the file's size");
  const std::uint64_t need = a.data_offset + std::uint64_t(a.elements()) * std::uint64_t(a.item_size);
  if (std::uint64_t(st.st_size) < need)
    fail(path, "holds " + std::to_string(st.st_size) + " bytes; its header (shape " + shape + ", " + descr +
                   ") needs " + std::to_string(need));
  return a;
}

NpyMapping::NpyMapping(const NpyArray& array) : a_(array) {
  const int fd = ::open(array.path.c_str(), O_RDONLY);
  if (fd < 0) fail(array.path, "cannot open the file");
  length_ = std::size_t(array.data_offset + std::uint64_t(array.elements()) * std::uint64_t(array.item_size));
  void* p = length_ ? ::mmap(nullptr, length_, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
  ::close(fd);
  if (length_ && p == MAP_FAILED) fail(array.path, "cannot map the file");
  base_ = static_cast<const unsigned char*>(p);
}

NpyMapping::~NpyMapping() {
  if (base_ && length_) ::munmap(const_cast<unsigned char*>(base_), length_);
}

void NpyMapping::copy_native(std::int64_t k, void* out) const {
  const unsigned char* src = base_ + a_.data_offset + std::uint64_t(k) * std::uint64_t(a_.item_size);
  auto* dst = static_cast<unsigned char*>(out);
  if (a_.big_endian)
    for (int b = 0; b < a_.item_size; ++b) dst[b] = src[a_.item_size - 1 - b];
  else
    std::memcpy(dst, src, std::size_t(a_.item_size));
}

double NpyMapping::value(std::int64_t k) const {
  unsigned char v[8];
  copy_native(k, v);
  auto as = [&](auto t) {
    std::memcpy(&t, v, sizeof t);
    return double(t);
  };
  switch (a_.kind) {
    case 'f': return a_.item_size == 4 ? as(float{}) : as(double{});
    case 'i':
      switch (a_.item_size) {
        case 1: return as(std::int8_t{});
        case 2: return as(std::int16_t{});
        case 4: return as(std::int32_t{});
        default: return as(std::int64_t{});
      }
    case 'u':
      switch (a_.item_size) {
        case 1: return as(std::uint8_t{});
        case 2: return as(std::uint16_t{});
        case 4: return as(std::uint32_t{});
        default: return as(std::uint64_t{});
      }
    default: return as(std::uint8_t{});  // bool
  }
}

std::vector<double> read_npy_vector(const std::string& path) {
  const NpyArray a = read_npy_header(path);
  if (a.shape.size() != 1) fail(path, "expected a 1-D array, got " + std::to_string(a.shape.size()) + " dimensions");
  const NpyMapping m(a);
  std::vector<double> v(static_cast<std::size_t>(a.elements()));
  for (std::int64_t k = 0; k < a.elements(); ++k) v[std::size_t(k)] = m.value(k);
  return v;
}

}  // namespace tessera::io

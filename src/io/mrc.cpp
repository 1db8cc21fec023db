#include "mrc.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "error.hpp"

namespace tessera::io {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw Error(path + ": " + what); }

int bytes_of(int mode) { return mode == 0 ? 1 : mode == 2 ? 4 : 2; }

std::int32_t int_at(const unsigned char* h, int at, bool big) {
  unsigned char b[4];
  for (int i = 0; i < 4; ++i) b[i] = big ? h[at + 3 - i] : h[at + i];
  std::int32_t v;
  std::memcpy(&v, b, 4);
  return v;
}

}  // namespace

MrcFile read_mrc_header(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open the file");
  unsigned char h[1024] = {};
  f.read(reinterpret_cast<char*>(h), 1024);
  if (f.gcount() < 1024 || std::memcmp(h + 208, "MAP", 3) != 0) fail(path, "not an MRC file (no 'MAP ' stamp at byte 208)");
  MrcFile m;
  m.path = path;
  m.big_endian = h[212] == 0x11;
  m.nx = int_at(h, 0, m.big_endian);
  m.ny = int_at(h, 4, m.big_endian);
  m.nz = int_at(h, 8, m.big_endian);
  m.mode = int_at(h, 12, m.big_endian);
  const std::int32_t ext = int_at(h, 92, m.big_endian);
  if (m.nx < 1 || m.ny < 1 || m.nz < 1 || ext < 0)
    fail(path, "header sizes " + std::to_string(m.nx) + " x " + std::to_string(m.ny) + " x " + std::to_string(m.nz) +
                   " (extended header " + std::to_string(ext) + " bytes) are not an image");
  if (m.mode != 0 && m.mode != 1 && m.mode != 2 && m.mode != 6)
    fail(path, "MRC mode " + std::to_string(m.mode) + " is not read (0 int8, 1 int16, 2 float32, 6 uint16)");
  m.data_offset = 1024 + std::uint64_t(ext);
  const std::uint64_t need = m.data_offset + std::uint64_t(m.nx * m.ny * m.nz) * std::uint64_t(bytes_of(m.mode));
  if (std::filesystem::file_size(path) < need)
    fail(path, "holds " + std::to_string(std::filesystem::file_size(path)) + " bytes; its header needs " +
                   std::to_string(need));
  return m;
}

void read_mrc_sections(const MrcFile& m, std::int64_t z0, std::int64_t z1, std::vector<double>& out) {
  const int b = bytes_of(m.mode);
  const std::int64_t n = (z1 - z0) * m.ny * m.nx;
  std::vector<unsigned char> raw(static_cast<std::size_t>(n * b));
  std::ifstream f(m.path, std::ios::binary);
  f.seekg(std::streamoff(m.data_offset + std::uint64_t(z0 * m.ny * m.nx * b)));
  f.read(reinterpret_cast<char*>(raw.data()), std::streamsize(raw.size()));
  if (std::int64_t(f.gcount()) != n * b) fail(m.path, "cannot read its sections");
  out.resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    unsigned char v[4];
    for (int k = 0; k < b; ++k) v[k] = m.big_endian ? raw[std::size_t(i * b + b - 1 - k)] : raw[std::size_t(i * b + k)];
    double x = 0;
    if (m.mode == 0) x = double(std::int8_t(v[0]));
    else if (m.mode == 1) { std::int16_t t; std::memcpy(&t, v, 2); x = t; }
    else if (m.mode == 6) { std::uint16_t t; std::memcpy(&t, v, 2); x = t; }
    else { float t; std::memcpy(&t, v, 4); x = t; }
    out[std::size_t(i)] = x;
  }
}

}  // namespace tessera::io

// MRC files (the electron-microscopy image format, MRC2014): a 1024-byte
// header (nx, ny, nz, mode, the extended header's length, the machine stamp),
// then nz sections of ny rows of nx values. Read as mrcfile shows them:
// data[z][y][x], row y, column x.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessera::io {

struct MrcFile {
  std::string path;
  std::int64_t nx = 0, ny = 0, nz = 0;
  int mode = 2;       // 0 int8, 1 int16, 2 float32, 6 uint16
  bool big_endian = false;
  std::uint64_t data_offset = 1024;
};

// Reads and checks the header (the 'MAP ' stamp, a mode tessera reads, a file
// long enough). Throws io::Error, one line naming the file.
MrcFile read_mrc_header(const std::string& path);

// Sections [z0, z1) as double, out[((z - z0) * ny + y) * nx + x].
void read_mrc_sections(const MrcFile& m, std::int64_t z0, std::int64_t z1, std::vector<double>& out);

}  // namespace tessera::io

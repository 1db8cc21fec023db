// Multi-page TIFF stacks read with libtiff: one page per sweep point (or per
// tile), one sample per pixel, 8/16/32-bit integers or 32/64-bit floats, in
// strips or tiles, any compression libtiff decodes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessera::io {

class TiffStack {
 public:
  // Opens and checks every page: the same size and sample type on all.
  // Throws io::Error, one line naming the file (and the page).
  explicit TiffStack(const std::string& path);
  ~TiffStack();
  TiffStack(const TiffStack&) = delete;
  TiffStack& operator=(const TiffStack&) = delete;

  std::int64_t pages = 0, rows = 0, cols = 0;
  int bits = 16;
  char kind = 'u';  // 'u' unsigned, 'i' signed, 'f' float

  // Rows [r0, r1) of pages [p0, p1): out[((p - p0) * (r1 - r0) + y) * cols + x].
  void read(std::int64_t p0, std::int64_t p1, std::int64_t r0, std::int64_t r1, std::vector<double>& out);

 private:
  void read_page_rows(std::int64_t page, std::int64_t r0, std::int64_t r1, double* out);
  std::string path_;
  void* tif_ = nullptr;  // TIFF*
  bool tiled_ = false;
};

}  // namespace tessera::io

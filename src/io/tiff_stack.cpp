#include "tiff_stack.hpp"

#include <tiffio.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "error.hpp"

namespace tessera::io {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw Error(path + ": " + what); }

// libtiff reports through handlers that print; keep the last message for our
// one-line errors instead.
thread_local std::string last_tiff_message;
void keep_message(const char* module, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  last_tiff_message = std::string(module ? module : "libtiff") + ": " + buf;
}
void quiet_warning(const char*, const char*, va_list) {}

void install_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    TIFFSetErrorHandler(keep_message);
    TIFFSetWarningHandler(quiet_warning);
  });
}

std::string tiff_suffix() {
  std::string m = last_tiff_message;
  last_tiff_message.clear();
  return m.empty() ? "" : " (" + m + ")";
}

template <class T>
void convert(const unsigned char* src, std::int64_t n, double* out) {
  for (std::int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * std::int64_t(sizeof(T)), sizeof(T));
    out[i] = double(v);
  }
}

}  // namespace

TiffStack::TiffStack(const std::string& path) : path_(path) {
  install_handlers();
  TIFF* t = TIFFOpen(path.c_str(), "r");
  if (!t) fail(path, "not a TIFF file" + tiff_suffix());
  tif_ = t;
  std::uint32_t w0 = 0, h0 = 0;
  std::uint16_t bits0 = 0, format0 = SAMPLEFORMAT_UINT;
  for (std::int64_t p = 0;; ++p) {
    std::uint32_t w = 0, h = 0;
    std::uint16_t spp = 1, bits = 0, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &format);
    TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
    const std::string page = "page " + std::to_string(p) + ": ";
    if (spp != 1) fail(path, page + std::to_string(spp) + " samples per pixel, expected 1 (a grey-level image)");
    if (w == 0 || h == 0) fail(path, page + "an empty image");
    const bool ok = (format == SAMPLEFORMAT_IEEEFP && (bits == 32 || bits == 64)) ||
                    ((format == SAMPLEFORMAT_UINT || format == SAMPLEFORMAT_INT) && (bits == 8 || bits == 16 || bits == 32));
    if (!ok) fail(path, page + std::to_string(bits) + "-bit samples of format " + std::to_string(format) +
                            " (8/16/32-bit integers or 32/64-bit floats are read)");
    if (p == 0) {
      w0 = w, h0 = h, bits0 = bits, format0 = format;
      tiled_ = TIFFIsTiled(t);
    } else if (w != w0 || h != h0 || bits != bits0 || format != format0) {
      fail(path, page + std::to_string(h) + " x " + std::to_string(w) + ", " + std::to_string(bits) +
                     "-bit; page 0 is " + std::to_string(h0) + " x " + std::to_string(w0) + ", " +
                     std::to_string(bits0) + "-bit: every page must match");
    } else if (bool(TIFFIsTiled(t)) != tiled_) {
      fail(path, page + "mixes tiled and stripped pages");
    }
    pages = p + 1;
    if (!TIFFReadDirectory(t)) break;
  }
  rows = h0, cols = w0, bits = bits0;
  kind = format0 == SAMPLEFORMAT_IEEEFP ? 'f' : format0 == SAMPLEFORMAT_INT ? 'i' : 'u';
}

TiffStack::~TiffStack() {
  if (tif_) TIFFClose(static_cast<TIFF*>(tif_));
}

void TiffStack::read_page_rows(std::int64_t page, std::int64_t r0, std::int64_t r1, double* out) {
  TIFF* t = static_cast<TIFF*>(tif_);
  if (!TIFFSetDirectory(t, tdir_t(page))) fail(path_, "cannot go to page " + std::to_string(page) + tiff_suffix());
  const int bytes = bits / 8;
  auto put = [&](const unsigned char* src, std::int64_t n, double* dst) {
    if (kind == 'f') bits == 32 ? convert<float>(src, n, dst) : convert<double>(src, n, dst);
    else if (kind == 'i') bits == 8 ? convert<std::int8_t>(src, n, dst)
                          : bits == 16 ? convert<std::int16_t>(src, n, dst) : convert<std::int32_t>(src, n, dst);
    else bits == 8 ? convert<std::uint8_t>(src, n, dst)
         : bits == 16 ? convert<std::uint16_t>(src, n, dst) : convert<std::uint32_t>(src, n, dst);
  };
  if (!tiled_) {
    // Whole strips (a compressed strip is decoded from its start), the rows
    // wanted copied out.
    std::uint32_t rps = 0;
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rps);
    const std::int64_t per = std::min<std::int64_t>(rps ? rps : rows, rows);
    const std::int64_t line = TIFFScanlineSize(t);
    std::vector<unsigned char> strip(static_cast<std::size_t>(TIFFStripSize(t)));
    for (std::int64_t s0 = (r0 / per) * per; s0 < r1; s0 += per) {
      if (TIFFReadEncodedStrip(t, TIFFComputeStrip(t, std::uint32_t(s0), 0), strip.data(), tmsize_t(-1)) < 0)
        fail(path_, "page " + std::to_string(page) + ", rows from " + std::to_string(s0) + ": cannot read" +
                        tiff_suffix());
      for (std::int64_t y = std::max(s0, r0); y < std::min(s0 + per, r1); ++y)
        put(strip.data() + (y - s0) * line, cols, out + (y - r0) * cols);
    }
    return;
  }
  std::uint32_t tw = 0, th = 0;
  TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
  TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
  std::vector<unsigned char> tile(static_cast<std::size_t>(TIFFTileSize(t)));
  std::vector<double> vals(static_cast<std::size_t>(tw));
  for (std::int64_t ty = (r0 / th) * th; ty < r1; ty += th)
    for (std::int64_t tx = 0; tx < cols; tx += tw) {
      if (TIFFReadTile(t, tile.data(), std::uint32_t(tx), std::uint32_t(ty), 0, 0) < 0)
        fail(path_, "page " + std::to_string(page) + ": cannot read a tile" + tiff_suffix());
      for (std::int64_t y = std::max(ty, r0); y < std::min<std::int64_t>(ty + th, r1); ++y) {
        const std::int64_t n = std::min<std::int64_t>(tw, cols - tx);
        put(tile.data() + ((y - ty) * tw) * bytes, n, vals.data());
        std::memcpy(out + (y - r0) * cols + tx, vals.data(), std::size_t(n) * sizeof(double));
      }
    }
}

void TiffStack::read(std::int64_t p0, std::int64_t p1, std::int64_t r0, std::int64_t r1, std::vector<double>& out) {
  out.resize(static_cast<std::size_t>((p1 - p0) * (r1 - r0) * cols));
  for (std::int64_t p = p0; p < p1; ++p) read_page_rows(p, r0, r1, out.data() + (p - p0) * (r1 - r0) * cols);
}

}  // namespace tessera::io

#include "fft_wisdom.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tessera::api {
namespace {

constexpr const char* kMagic = "tessera fft wisdom 1";

// The file: the magic line, then "float N" and N bytes, "double N" and N bytes.
std::string serialise(const xcorr::FftWisdom& w) {
  return std::string(kMagic) + "\nfloat " + std::to_string(w.single.size()) + "\n" + w.single + "double " +
         std::to_string(w.dbl.size()) + "\n" + w.dbl;
}

xcorr::FftWisdom parse(const std::string& text, const std::string& file) {
  std::istringstream in(text);
  std::string magic;
  std::getline(in, magic);
  xcorr::FftWisdom w;
  for (std::string* part : {&w.single, &w.dbl}) {
    std::string word;
    std::size_t n = 0;
    if (magic != kMagic || !(in >> word >> n) || in.get() != '\n')
      throw std::runtime_error("--fft-wisdom " + file + ": not a tessera FFT wisdom file");
    part->resize(n);
    if (!in.read(part->data(), std::streamsize(n))) throw std::runtime_error("--fft-wisdom " + file + ": truncated");
  }
  return w;
}

}  // namespace

std::string wisdom_digest(const xcorr::FftWisdom& w) {
  std::uint64_t h = 1469598103934665603ull;
  for (const std::string* s : {&w.single, &w.dbl}) {
    for (unsigned char c : *s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;  // separator
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

xcorr::FftWisdom load_or_measure_wisdom(const std::string& file, std::pair<int, int> fft, bool with_double) {
  xcorr::FftWisdom start;
  if (std::filesystem::exists(file)) {
    std::ifstream f(file, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    if (!f) throw std::runtime_error("--fft-wisdom " + file + ": cannot read");
    start = parse(ss.str(), file);
  }
  const std::pair<int, int> sizes[] = {fft};
  xcorr::FftWisdom out;
  try {
    // FFTW exports the same wisdom in another order after an import: the file
    // is kept as it is (and so its digest) unless it lacks a plan.
    if (!start.single.empty() && xcorr::fft_wisdom_covers(start, sizes, with_double)) {
      out = start;
    } else {
      out = xcorr::measure_fft_wisdom(sizes, with_double, start);
      const std::string tmp = file + ".tmp";
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << serialise(out);
      f.close();
      if (!f) throw std::runtime_error("--fft-wisdom " + file + ": cannot write " + tmp);
      std::filesystem::rename(tmp, file);  // whole or not at all
    }
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error("--fft-wisdom " + file + ": " + e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    throw std::runtime_error("--fft-wisdom " + file + ": " + e.code().message());
  }
  return out;
}

}  // namespace tessera::api

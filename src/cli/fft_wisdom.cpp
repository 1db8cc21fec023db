#include "fft_wisdom.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "command.hpp"
#include "io/error.hpp"
#include "mpi/collectives.hpp"
#include "xcorr/fft_plans.hpp"

namespace tessera::cli {
namespace {

constexpr const char* kMagic = "tessera fft wisdom 1";

std::string digest_of(const xcorr::FftWisdom& w) {
  std::uint64_t h = 1469598103934665603ull;
  for (const std::string* s : {&w.single, &w.dbl}) {
    for (unsigned char c : *s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;  // separator
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

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
    if (!in.read(part->data(), std::streamsize(n)))
      throw std::runtime_error("--fft-wisdom " + file + ": truncated");
  }
  return w;
}

// Rank 0: the wisdom of FILE plus whatever this run's size needs, written
// back when it changed. "" or the reason in *error.
xcorr::FftWisdom measure_on_root(const std::string& file, std::pair<int, int> fft, bool with_double, bool* written,
                                 std::string* error) {
  try {
    xcorr::FftWisdom start;
    if (std::filesystem::exists(file)) {
      std::ifstream f(file, std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      if (!f) throw std::runtime_error("--fft-wisdom " + file + ": cannot read");
      start = parse(ss.str(), file);
    }
    const std::pair<int, int> sizes[] = {fft};
    xcorr::FftWisdom w;
    try {
      // FFTW exports the same wisdom in another order after an import: the
      // file is kept as it is (and its digest) unless it lacks a plan.
      if (!start.single.empty() && xcorr::fft_wisdom_covers(start, sizes, with_double)) return start;
      w = xcorr::measure_fft_wisdom(sizes, with_double, start);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error("--fft-wisdom " + file + ": " + e.what());
    }
    {
      const std::string tmp = file + ".tmp";
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << serialise(w);
      out.close();
      if (!out) throw std::runtime_error("--fft-wisdom " + file + ": cannot write " + tmp);
      std::filesystem::rename(tmp, file);  // whole or not at all
      *written = true;
    }
    return w;
  } catch (const std::exception& e) {
    *error = e.what();
    return {};
  }
}

}  // namespace

FftWisdomUse setup_fft_wisdom(MPI_Comm comm, const std::string& file, std::pair<int, int> fft, bool with_double) {
  FftWisdomUse use;
  if (file.empty()) return use;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string error;
  xcorr::FftWisdom w;
  if (rank == 0) w = measure_on_root(file, fft, with_double, &use.written, &error);
  io::throw_if_any(comm, error);
  w.single = mpi::broadcast_from_root(comm, w.single);
  w.dbl = mpi::broadcast_from_root(comm, w.dbl);
  const std::pair<int, int> sizes[] = {fft};
  error = xcorr::use_fft_wisdom(w, sizes, with_double);
  if (!error.empty()) error = "--fft-wisdom " + file + ": " + error;
  io::throw_if_any(comm, error);
  use.file = file;
  use.digest = digest_of(w);
  return use;
}

}  // namespace tessera::cli

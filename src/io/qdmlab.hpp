// QDMlab run files (Harvard's MATLAB ODMR software): MATLAB v7.3 files, which
// are HDF5 behind a 512-byte MATLAB header, read with HDF5 alone. MATLAB's
// column-major [n_freq, cols*rows] stacks appear in HDF5 with the dimensions
// reversed, (cols*rows, n_freq); pixel p is row * cols + col. Two stacks
// (imgStack1: the low resonance, imgStack2: the high one) or four (1 + 2 the
// low resonance's two parts, 3 + 4 the high one's); freqList in Hz, MATLAB
// [1, n_low + n_high]; imgNumRows, imgNumCols, numFreqs 1x1 doubles.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "h5_handle.hpp"

namespace tessera::io {

class QdmlabRun {
 public:
  // Opens and checks the file (serially, this process alone): HDF5, the
  // stacks, their sizes against imgNumRows * imgNumCols, freqList's length.
  // Throws io::Error, one line naming the file.
  explicit QdmlabRun(const std::string& path);

  std::int64_t rows = 0, cols = 0;
  std::int64_t n_low = 0, n_high = 0;  // points of the two resonance windows
  double num_freqs = 0;                // numFreqs as recorded
  int stacks = 0;                      // 2 or 4
  std::vector<double> sweep_mhz;       // freqList / 1e6, low window then high

  // Rows [r0, r1) of every point, low then high: out[(i * (r1 - r0) + y) * cols + x].
  void read_rows(std::int64_t r0, std::int64_t r1, std::vector<double>& out) const;

 private:
  std::string path_;
  Handle file_;
  std::vector<std::int64_t> points_;  // of each stack
};

}  // namespace tessera::io

// FFT wisdom files (`tessera xcorr --fft-wisdom FILE`, tessera.xcorr(fft_wisdom=)):
// the FFTW_MEASURE plans of xcorr/fft_plans.hpp kept in a file, so that every
// process and every later run plans the same way. No MPI here: the command
// reads and measures on rank 0 and broadcasts (src/cli/fft_wisdom.hpp); the
// library does both in its one process.
#pragma once

#include <string>
#include <utility>

#include "xcorr/fft_plans.hpp"

namespace tessera::api {

// Reads FILE when it exists; when it lacks the plans of the padded transform
// size fft (float, and double with with_double), measures them (a few
// seconds) and writes FILE (whole or not at all). Throws std::runtime_error
// "--fft-wisdom FILE: ..." (unreadable, not a wisdom file, not writable).
xcorr::FftWisdom load_or_measure_wisdom(const std::string& file, std::pair<int, int> fft, bool with_double);

// FNV-1a 64 of the wisdom text, hex (the command's fingerprints and attributes).
std::string wisdom_digest(const xcorr::FftWisdom& w);

}  // namespace tessera::api

// `tessera xcorr --fft-wisdom FILE` (issue 16): FFTW plans chosen by timing
// (FFTW_MEASURE) yet the same on every rank and in every run that uses FILE,
// so the bits still do not depend on the number of ranks (xcorr/fft_plans.hpp).
// Rank 0 reads FILE when it exists, measures the plans of this run's size that
// it lacks (a few seconds, once), writes FILE back when it gained any, and
// broadcasts the wisdom; every rank then plans from it alone. A rank that
// cannot use it (a node of another CPU kind) stops the run with one line on
// every rank: results made with other plans would differ in the last bits.
#pragma once

#include <mpi.h>

#include <string>
#include <utility>

namespace tessera::cli {

struct FftWisdomUse {
  std::string file;    // "" without the option
  std::string digest;  // FNV-1a 64 of the wisdom text, hex; "" without
};

// Collective. fft: the padded size of this run's transforms; with_double: the
// masked path's double transforms too. Throws UsageError (via io::Error) with
// the one-line reason: FILE unreadable or not a wisdom file, unusable on a rank.
FftWisdomUse setup_fft_wisdom(MPI_Comm comm, const std::string& file, std::pair<int, int> fft, bool with_double);

}  // namespace tessera::cli

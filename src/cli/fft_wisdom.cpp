#include "fft_wisdom.hpp"

#include <stdexcept>

#include "api/fft_wisdom.hpp"
#include "io/error.hpp"
#include "mpi/collectives.hpp"
#include "xcorr/fft_plans.hpp"

namespace tessera::cli {

FftWisdomUse setup_fft_wisdom(MPI_Comm comm, const std::string& file, std::pair<int, int> fft, bool with_double) {
  FftWisdomUse use;
  if (file.empty()) return use;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string error;
  xcorr::FftWisdom w;
  if (rank == 0) {
    try {
      w = api::load_or_measure_wisdom(file, fft, with_double);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  io::throw_if_any(comm, error);
  w.single = mpi::broadcast_from_root(comm, w.single);
  w.dbl = mpi::broadcast_from_root(comm, w.dbl);
  const std::pair<int, int> sizes[] = {fft};
  error = xcorr::import_fft_wisdom(w, sizes, with_double);
  if (!error.empty()) error = "--fft-wisdom " + file + ": " + error;
  io::throw_if_any(comm, error);
  use.file = file;
  use.digest = api::wisdom_digest(w);
  return use;
}

}  // namespace tessera::cli

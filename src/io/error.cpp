#include "error.hpp"

#include <hdf5.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "mpi/collectives.hpp"

namespace tessera::io {

std::string message(const std::string& file, const std::string& dataset,
                    const std::string& what) {
  std::string m = file + ": ";
  if (!dataset.empty()) m += dataset + ": ";
  m += what;
  std::replace(m.begin(), m.end(), '\n', ' ');
  std::replace(m.begin(), m.end(), '\r', ' ');
  return m;
}

void throw_if_any(MPI_Comm comm, const std::string& local_error) {
  std::string agreed = mpi::agree_error(comm, local_error);
  if (!agreed.empty()) throw Error(agreed);
}

void silence_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

}  // namespace tessera::io

#include "error.hpp"

#include <hdf5.h>

#include <algorithm>
#include <climits>
#include <vector>

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

bool all_ok(MPI_Comm comm, bool local_ok) {
  int ok = local_ok ? 1 : 0;
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, comm);
  return all != 0;
}

std::string agree_error(MPI_Comm comm, const std::string& local_error) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int mine = local_error.empty() ? INT_MAX : rank;
  int first = INT_MAX;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == INT_MAX) return {};
  // The first failing rank broadcasts its message.
  int length = rank == first ? static_cast<int>(local_error.size()) : 0;
  MPI_Bcast(&length, 1, MPI_INT, first, comm);
  std::vector<char> text(static_cast<std::size_t>(length) + 1, '\0');
  if (rank == first) std::copy(local_error.begin(), local_error.end(), text.begin());
  MPI_Bcast(text.data(), length, MPI_CHAR, first, comm);
  return std::string(text.data(), static_cast<std::size_t>(length));
}

void throw_if_any(MPI_Comm comm, const std::string& local_error) {
  std::string agreed = agree_error(comm, local_error);
  if (!agreed.empty()) throw Error(agreed);
}

void silence_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

}  // namespace tessera::io

#include "collectives.hpp"

#include <algorithm>
#include <climits>
#include <stdexcept>

#include "decomposition.hpp"

namespace tessera::mpi {

namespace {

int rank_of(MPI_Comm comm) {
  int r = 0;
  MPI_Comm_rank(comm, &r);
  return r;
}

int size_of(MPI_Comm comm) {
  int s = 1;
  MPI_Comm_size(comm, &s);
  return s;
}

template <class T>
std::vector<T> allgather_rows_of(MPI_Comm comm, std::span<const T> mine, std::int64_t n_rows,
                                 std::int64_t per_row, MPI_Datatype type) {
  const int size = size_of(comm), rank = rank_of(comm);
  std::vector<int> counts(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
  for (int q = 0; q < size; ++q) {
    const Range rq = split_rows(n_rows, size, q);
    counts[std::size_t(q)] = int(rq.size() * per_row);
    displs[std::size_t(q)] = int(rq.begin * per_row);
  }
  if (std::int64_t(mine.size()) != counts[std::size_t(rank)])
    throw std::invalid_argument("allgather_rows: this rank holds the wrong number of values");
  std::vector<T> all(std::size_t(n_rows * per_row));
  MPI_Allgatherv(mine.data(), counts[std::size_t(rank)], type, all.data(), counts.data(), displs.data(), type,
                 comm);
  return all;
}

}  // namespace

bool all_ok(MPI_Comm comm, bool local_ok) {
  int ok = local_ok ? 1 : 0;
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, comm);
  return all != 0;
}

std::string agree_error(MPI_Comm comm, const std::string& local_error) {
  const int rank = rank_of(comm);
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

std::string broadcast_from_root(MPI_Comm comm, const std::string& s) {
  const int rank = rank_of(comm);
  unsigned long long length = rank == 0 ? s.size() : 0;
  MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, 0, comm);
  std::string out = rank == 0 ? s : std::string(length, '\0');
  MPI_Bcast(out.data(), int(length), MPI_CHAR, 0, comm);
  return out;
}

std::vector<double> allgather_rows(MPI_Comm comm, std::span<const double> mine, std::int64_t n_rows,
                                   std::int64_t per_row) {
  return allgather_rows_of(comm, mine, n_rows, per_row, MPI_DOUBLE);
}

std::vector<std::int64_t> allgather_rows(MPI_Comm comm, std::span<const std::int64_t> mine,
                                         std::int64_t n_rows, std::int64_t per_row) {
  return allgather_rows_of(comm, mine, n_rows, per_row, MPI_INT64_T);
}

std::vector<std::int64_t> sum_all(MPI_Comm comm, std::span<const std::int64_t> values) {
  std::vector<std::int64_t> out(values.size());
  MPI_Allreduce(values.data(), out.data(), int(values.size()), MPI_INT64_T, MPI_SUM, comm);
  return out;
}

std::vector<double> max_all(MPI_Comm comm, std::span<const double> values) {
  std::vector<double> out(values.size());
  MPI_Allreduce(values.data(), out.data(), int(values.size()), MPI_DOUBLE, MPI_MAX, comm);
  return out;
}

std::int64_t max_all(MPI_Comm comm, std::int64_t value) {
  std::int64_t out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_MAX, comm);
  return out;
}

std::vector<std::string> gather_to_root(MPI_Comm comm, const std::string& mine) {
  const int rank = rank_of(comm), size = size_of(comm);
  const int len = int(mine.size());
  std::vector<int> lens(rank == 0 ? std::size_t(size) : 0), offsets;
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm);
  std::vector<char> all;
  if (rank == 0) {
    offsets.resize(std::size_t(size));
    int total = 0;
    for (int r = 0; r < size; ++r) {
      offsets[std::size_t(r)] = total;
      total += lens[std::size_t(r)];
    }
    all.resize(std::size_t(total) + 1);
  }
  MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, 0, comm);
  std::vector<std::string> out;
  for (int r = 0; rank == 0 && r < size; ++r)
    out.emplace_back(all.data() + offsets[std::size_t(r)], std::size_t(lens[std::size_t(r)]));
  return out;
}

}  // namespace tessera::mpi

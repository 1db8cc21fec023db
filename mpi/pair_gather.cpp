#include "pair_gather.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace tessera::mpi {
namespace {

// A record on the wire: index, y, x, value, sub_y, sub_x, sharpness,
// peak_ratio, then (y, x, value) of each top candidate. Every field is exact
// in a double (indices and coordinates below 2^53, floats widened), so one MPI
// type carries them all.
constexpr int kFields = 8;
constexpr int kTopFields = 3;

void pack(const PairRecord& r, int top_k, double* f) {
  if (r.top.size() != std::size_t(top_k)) throw std::logic_error("xcorr: a record without its top_k candidates");
  f[0] = double(r.index);
  f[1] = double(r.y);
  f[2] = double(r.x);
  f[3] = r.value;
  f[4] = r.sub_y;
  f[5] = r.sub_x;
  f[6] = r.sharpness;
  f[7] = r.peak_ratio;
  for (int c = 0; c < top_k; ++c) {
    double* t = f + kFields + kTopFields * c;
    t[0] = double(r.top[std::size_t(c)].y);
    t[1] = double(r.top[std::size_t(c)].x);
    t[2] = r.top[std::size_t(c)].value;
  }
}

PairRecord unpack(const double* f, int top_k) {
  PairRecord r{std::int64_t(f[0]), std::int64_t(f[1]), std::int64_t(f[2]), float(f[3]), f[4], f[5],
               float(f[6]),        float(f[7]),        {}};
  for (int c = 0; c < top_k; ++c) {
    const double* t = f + kFields + kTopFields * c;
    r.top.push_back({std::int64_t(t[0]), std::int64_t(t[1]), float(t[2])});
  }
  return r;
}

}  // namespace

std::vector<PairRecord> gather_pairs_in_order(MPI_Comm comm, std::int64_t n_pairs,
                                              std::span<const PairRecord> mine, int top_k) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const std::size_t fields = std::size_t(kFields + kTopFields * top_k);
  std::vector<double> packed(mine.size() * fields);
  for (std::size_t k = 0; k < mine.size(); ++k) pack(mine[k], top_k, packed.data() + k * fields);

  // Counts in records (one derived type per record), so that a rank may send
  // up to INT_MAX records rather than INT_MAX doubles.
  MPI_Datatype record;
  MPI_Type_contiguous(int(fields), MPI_DOUBLE, &record);
  MPI_Type_commit(&record);
  int my_count = int(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
  MPI_Gather(&my_count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm);
  std::int64_t received = 0;
  if (rank == 0)
    for (int i = 0; i < size; ++i) {
      displs[std::size_t(i)] = int(received);
      received += counts[std::size_t(i)];
    }
  std::vector<double> all(std::size_t(received) * fields);
  MPI_Gatherv(packed.data(), my_count, record, all.data(), counts.data(), displs.data(), record, 0, comm);
  MPI_Type_free(&record);
  if (rank != 0) return {};

  std::vector<PairRecord> out(static_cast<std::size_t>(n_pairs));
  std::vector<char> seen(static_cast<std::size_t>(n_pairs), 0);
  for (std::int64_t k = 0; k < received; ++k) {
    PairRecord r = unpack(all.data() + std::size_t(k) * fields, top_k);
    if (r.index < 0 || r.index >= n_pairs || seen[std::size_t(r.index)])
      throw std::logic_error("xcorr: pair " + std::to_string(r.index) + " was computed twice or is out of range");
    seen[std::size_t(r.index)] = 1;
    out[std::size_t(r.index)] = std::move(r);
  }
  if (received != n_pairs) throw std::logic_error("xcorr: a pair was not computed by any rank");
  return out;
}

}  // namespace tessera::mpi

#include "count_relay.hpp"

#include <algorithm>
#include <numeric>

namespace tessera::mpi {

namespace {
constexpr int kTag = 7301;
}

CountRelay::CountRelay(MPI_Comm comm) : comm_(comm) {
  int size = 1;
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size);
  counts_.assign(std::size_t(size), 0);
}

void CountRelay::send(std::int64_t count) {
  if (rank_ == 0 || count == sent_value_) return;
  sent_value_ = count;
  MPI_Send(&count, 1, MPI_INT64_T, 0, kTag, comm_);  // 8 bytes: eager, returns at once
  ++messages_sent_;
}

void CountRelay::take(int source, std::int64_t value) {
  counts_[std::size_t(source)] = std::max(counts_[std::size_t(source)], value);
  ++messages_received_;
}

void CountRelay::poll() {
  if (rank_ != 0) return;
  for (;;) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kTag, comm_, &flag, &st);
    if (!flag) return;
    std::int64_t v = 0;
    MPI_Recv(&v, 1, MPI_INT64_T, st.MPI_SOURCE, kTag, comm_, MPI_STATUS_IGNORE);
    take(st.MPI_SOURCE, v);
  }
}

void CountRelay::drain() {
  // The root learns how many messages each rank sent and waits for all of them.
  std::int64_t expected = 0;
  MPI_Reduce(&messages_sent_, &expected, 1, MPI_INT64_T, MPI_SUM, 0, comm_);
  while (rank_ == 0 && messages_received_ < expected) {
    std::int64_t v = 0;
    MPI_Status st;
    MPI_Recv(&v, 1, MPI_INT64_T, MPI_ANY_SOURCE, kTag, comm_, &st);
    take(st.MPI_SOURCE, v);
  }
}

std::int64_t CountRelay::total(std::int64_t own) const {
  return std::accumulate(counts_.begin() + 1, counts_.end(), own);
}

}  // namespace tessera::mpi

// Counts of work done on every rank, relayed to rank 0 while the work runs
// (progress reports): small point-to-point messages sent and received by the
// ranks' main threads only (MPI_THREAD_FUNNELED), never a collective that a
// busy rank would hold up.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

namespace tessera::mpi {

class CountRelay {
 public:
  explicit CountRelay(MPI_Comm comm);
  bool is_root() const { return rank_ == 0; }

  // Non-root: sends this rank's count when it changed since the last send.
  void send(std::int64_t count);
  // Root: takes every count that has arrived.
  void poll();
  // Collective: the root waits for every message still on its way, so that
  // none is left unmatched.
  void drain();
  // Root: its own count plus the last count heard from every other rank.
  std::int64_t total(std::int64_t own) const;

 private:
  void take(int source, std::int64_t value);

  MPI_Comm comm_;
  int rank_ = 0;
  std::int64_t sent_value_ = 0, messages_sent_ = 0, messages_received_ = 0;
  std::vector<std::int64_t> counts_;  // root: last count heard from each rank
};

}  // namespace tessera::mpi

// Progress of a long run across all ranks, reported by rank 0 on stderr: a bar
// on a terminal, a line every few seconds otherwise. Worker threads add to a
// rank's count; the rank's main thread relays it to rank 0
// (mpi/count_relay.hpp).
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mpi/count_relay.hpp"

namespace tessera::cli {

class Progress {
 public:
  // Collective. total: items (pixels, pairs) over all ranks; quiet: say
  // nothing; unit: how an item is named in the report.
  Progress(MPI_Comm comm, std::int64_t total, bool quiet, std::string what,
           std::string unit = "px");

  // Thread-safe: called by worker threads.
  void add(std::int64_t n) { done_.fetch_add(n, std::memory_order_relaxed); }

  // Runs work() on a separate thread while this (main) thread forwards and
  // prints progress; returns when work() has returned (rethrows its exception).
  void run(const std::function<void()>& work);

  // Collective: receives every message still on its way and prints the last
  // line (rate and elapsed time).
  void finish();

 private:
  void print(bool final);

  mpi::CountRelay relay_;
  std::int64_t total_;
  bool quiet_, tty_;
  std::string what_, unit_;
  std::atomic<std::int64_t> done_{0};
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace tessera::cli

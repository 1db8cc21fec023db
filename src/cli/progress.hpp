// Progress of a long run across all ranks, reported by rank 0 on stderr: a bar
// on a terminal, a line every few seconds otherwise. Worker threads add to a
// rank's count; the rank's main thread forwards it to rank 0 with small
// point-to-point messages (MPI_THREAD_FUNNELED: only main threads call MPI).
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

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
  void forward();  // non-root: send the count when it changed
  void receive();  // root: take every message that has arrived
  void print(bool final);

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::int64_t total_;
  bool quiet_, tty_;
  std::string what_, unit_;
  std::atomic<std::int64_t> done_{0};
  std::int64_t sent_value_ = 0;
  std::int64_t messages_sent_ = 0;
  std::vector<std::int64_t> counts_;    // root: last count heard from each rank
  std::int64_t messages_received_ = 0;  // root
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace tessera::cli

// The CPU backends' threads (host only; nothing here runs on a device): how
// many cores this process may use, and the one pool that fit and xcorr share.
// Work items are handed out dynamically, so a slow item holds no other thread;
// callers make each item's result independent of which thread ran it, so
// results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define TESSERA_HAVE_MXCSR 1
#endif

namespace tessera::core {

// The cores this process may run on: its affinity mask (under mpirun or srun
// with binding, a rank's own cores, not the machine's), at least 1.
inline int usable_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1, int(std::thread::hardware_concurrency()));
}

// For its scope, the calling thread treats subnormal floats (below 1.2e-38
// in magnitude) as 0, in its inputs and results (x86: MXCSR's DAZ and FTZ
// bits, which govern SSE, AVX and AVX-512 alike); the previous mode is
// restored at the end. Fits that drive a parameter towards 0 (a flat or dead
// pixel's amplitude) meet such values in their Jacobians, and each costs a
// microcode assist of a hundred cycles or more: a 512 x 512 two-dip fit from
// the automatic starts took 0.58 s instead of 0.49 s. Values that small mean
// nothing in a fit of measured data; every thread of the engine sets the same
// mode, so results stay independent of the thread count. Elsewhere a no-op.
class FlushSubnormals {
 public:
#if defined(TESSERA_HAVE_MXCSR)
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~FlushSubnormals() { _mm_setcsr(saved_); }
#else
  FlushSubnormals() = default;
#endif
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
#if defined(TESSERA_HAVE_MXCSR)
  unsigned saved_;
#endif
};

// Runs work() on `threads` threads at once (the calling thread is one of
// them) and waits for all; each runs its own loop over work they share. The
// first exception thrown is rethrown once every thread has returned.
template <class F>
void run_threads(int threads, F&& work) {
  std::exception_ptr error;
  std::mutex error_mutex;
  auto guarded = [&] {
    try {
      work();
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(guarded);
  guarded();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

// Calls f(i) for every i in [0, n), `chunk` consecutive indices at a time, on
// min(threads, chunks) threads (threads <= 0: usable_cores()). After an
// exception no new chunk is started; the first one is rethrown.
template <class F>
void parallel_for(std::int64_t n, int threads, std::int64_t chunk, F&& f) {
  if (n <= 0) return;
  const std::int64_t chunks = (n + chunk - 1) / chunk;
  const int t = int(std::clamp<std::int64_t>(chunks, 1, threads > 0 ? threads : usable_cores()));
  std::atomic<std::int64_t> next{0};
  std::atomic<bool> failed{false};
  run_threads(t, [&] {
    for (;;) {
      const std::int64_t b = next.fetch_add(chunk);
      if (b >= n || failed.load()) return;
      try {
        for (std::int64_t i = b; i < std::min(b + chunk, n); ++i) f(i);
      } catch (...) {
        failed = true;
        throw;
      }
    }
  });
}

}  // namespace tessera::core

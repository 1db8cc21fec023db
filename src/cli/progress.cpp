#include "progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace tessera::cli {

namespace {

std::string human_rate(double px_per_s) {
  char b[32];
  if (px_per_s >= 1e6) std::snprintf(b, sizeof b, "%.2f M", px_per_s / 1e6);
  else if (px_per_s >= 1e3) std::snprintf(b, sizeof b, "%.1f k", px_per_s / 1e3);
  else std::snprintf(b, sizeof b, "%.0f ", px_per_s);
  return b;
}

std::string human_time(double s) {
  char b[32];
  if (s >= 3600) std::snprintf(b, sizeof b, "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else if (s >= 60) std::snprintf(b, sizeof b, "%dm%02ds", int(s / 60), int(s) % 60);
  else std::snprintf(b, sizeof b, "%.0fs", s);
  return b;
}
}  // namespace

Progress::Progress(MPI_Comm comm, std::int64_t total, bool quiet, std::string what,
                   std::string unit)
    : relay_(comm), total_(total), quiet_(quiet), tty_(isatty(STDERR_FILENO) == 1),
      what_(std::move(what)), unit_(std::move(unit)) {
  start_ = last_print_ = std::chrono::steady_clock::now();
}

void Progress::print(bool final) {
  if (quiet_ || !relay_.is_root() || total_ <= 0) return;
  const std::int64_t done = relay_.total(done_.load(std::memory_order_relaxed));
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double left = rate > 0 ? (total_ - done) / rate : 0;
  const double frac = double(done) / double(total_);
  if (tty_) {
    constexpr int width = 30;
    const int filled = int(frac * width + 0.5);
    std::fprintf(stderr, "\r%s [%s%s] %3.0f%% %lld/%lld %s, %s%s/s, %s %s", what_.c_str(),
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                 100 * frac, (long long)done, (long long)total_, unit_.c_str(),
                 human_rate(rate).c_str(), unit_.c_str(),
                 final ? "took" : "left", human_time(final ? elapsed : left).c_str());
    if (final) std::fputc('\n', stderr);
  } else {
    std::fprintf(stderr, "%s: %lld/%lld %s (%.0f%%), %s%s/s, %s %s\n", what_.c_str(),
                 (long long)done, (long long)total_, unit_.c_str(), 100 * frac,
                 human_rate(rate).c_str(), unit_.c_str(),
                 final ? "took" : "left", human_time(final ? elapsed : left).c_str());
  }
  std::fflush(stderr);
}

void Progress::run(const std::function<void()>& work) {
  std::exception_ptr error;
  bool finished = false;
  std::mutex mutex;
  std::condition_variable done;
  std::thread worker([&] {
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex);
    finished = true;
    done.notify_one();
  });
  const auto interval = std::chrono::milliseconds(tty_ ? 500 : 5000);
  for (;;) {
    {
      // Wakes at once when the work ends (a short chunk costs no polling
      // delay), else every 50 ms to relay and print the counts.
      std::unique_lock<std::mutex> lock(mutex);
      if (done.wait_for(lock, std::chrono::milliseconds(50), [&] { return finished; })) break;
    }
    relay_.send(done_.load(std::memory_order_relaxed));
    relay_.poll();
    const auto now = std::chrono::steady_clock::now();
    if (now - last_print_ >= interval) {
      last_print_ = now;
      print(false);
    }
  }
  worker.join();
  relay_.send(done_.load(std::memory_order_relaxed));
  if (error) std::rethrow_exception(error);
}

void Progress::finish() {
  relay_.send(done_.load(std::memory_order_relaxed));
  relay_.drain();
  print(true);
}

}  // namespace tessera::cli

#include "progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <numeric>
#include <thread>

namespace tessera::cli {

namespace {
constexpr int progress_tag = 7301;

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
    : comm_(comm), total_(total), quiet_(quiet), tty_(isatty(STDERR_FILENO) == 1),
      what_(std::move(what)), unit_(std::move(unit)) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  counts_.assign(size_, 0);
  start_ = last_print_ = std::chrono::steady_clock::now();
}

void Progress::forward() {
  if (rank_ == 0) return;
  const std::int64_t now = done_.load(std::memory_order_relaxed);
  if (now == sent_value_) return;
  sent_value_ = now;
  MPI_Send(&now, 1, MPI_INT64_T, 0, progress_tag, comm_);  // 8 bytes: eager, returns at once
  ++messages_sent_;
}

void Progress::receive() {
  if (rank_ != 0) return;
  for (;;) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, progress_tag, comm_, &flag, &st);
    if (!flag) return;
    std::int64_t v = 0;
    MPI_Recv(&v, 1, MPI_INT64_T, st.MPI_SOURCE, progress_tag, comm_, MPI_STATUS_IGNORE);
    counts_[st.MPI_SOURCE] = std::max(counts_[st.MPI_SOURCE], v);
    ++messages_received_;
  }
}

void Progress::print(bool final) {
  if (quiet_ || rank_ != 0 || total_ <= 0) return;
  counts_[0] = done_.load(std::memory_order_relaxed);
  const std::int64_t done = std::accumulate(counts_.begin(), counts_.end(), std::int64_t(0));
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
  std::atomic<bool> finished{false};
  std::thread worker([&] {
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
    finished = true;
  });
  const auto interval = std::chrono::milliseconds(tty_ ? 500 : 5000);
  while (!finished) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    forward();
    receive();
    const auto now = std::chrono::steady_clock::now();
    if (now - last_print_ >= interval) {
      last_print_ = now;
      print(false);
    }
  }
  worker.join();
  forward();
  if (error) std::rethrow_exception(error);
}

void Progress::finish() {
  forward();
  // Rank 0 learns how many messages each rank sent and waits for all of them,
  // so that none is left unmatched.
  std::int64_t expected = 0;
  MPI_Reduce(&messages_sent_, &expected, 1, MPI_INT64_T, MPI_SUM, 0, comm_);
  if (rank_ == 0) {
    while (messages_received_ < expected) {
      std::int64_t v = 0;
      MPI_Status st;
      MPI_Recv(&v, 1, MPI_INT64_T, MPI_ANY_SOURCE, progress_tag, comm_, &st);
      counts_[st.MPI_SOURCE] = std::max(counts_[st.MPI_SOURCE], v);
      ++messages_received_;
    }
  }
  print(true);
}

}  // namespace tessera::cli

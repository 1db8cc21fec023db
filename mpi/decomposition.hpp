// Decomposition of the pixel grid over MPI ranks and of a rank's share into
// chunks that fit a memory budget. Pure functions: no MPI calls, no I/O, so
// they are tested without mpirun and give every rank the same answers from the
// same arguments (a rank can compute any other rank's share).
//
// Typical use by a command that processes `ny` rows of `nx` pixels each:
//
//   auto rows   = mpi::split_rows(ny, size, rank);            // this rank's rows
//   auto plan   = mpi::plan_chunks(ny, size, budget, bytes_per_row);
//   for (std::int64_t c = 0; c < plan.n_chunks; ++c) {        // same count on every rank
//     auto part = mpi::chunk_range(rows, plan.n_chunks, c);   // may be empty
//     ...collective read of `part`, fit, collective write of `part`...
//   }
//
// Every rank loops over the same number of chunks, since each chunk's read and
// write are collective HDF5 calls that every rank must join, even with an empty
// range.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::mpi {

// A half-open range of rows [begin, end).
struct Range {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  [[nodiscard]] std::int64_t size() const { return end - begin; }
  [[nodiscard]] bool empty() const { return end <= begin; }
  friend bool operator==(const Range&, const Range&) = default;
};

// Balanced split of `n` rows over `size` parts: the first n % size parts get
// one row more than the others; with more parts than rows, the parts beyond
// `n` are empty (begin == end == n). Ranges are contiguous and in part order.
// Throws std::invalid_argument for n < 0, size < 1 or part outside [0, size).
[[nodiscard]] Range split_rows(std::int64_t n, int size, int part);

// All parts of split_rows(n, size, .), in order.
[[nodiscard]] std::vector<Range> split_all(std::int64_t n, int size);

// The largest share of split_rows(n, size, .): ceil(n / size).
[[nodiscard]] std::int64_t max_share(std::int64_t n, int size);

// How many rows fit a budget of `budget_bytes` at `bytes_per_row` each; at
// least 1 (a row larger than the budget is still processed, one at a time).
// Throws std::invalid_argument for bytes_per_row == 0.
[[nodiscard]] std::int64_t rows_per_chunk(std::uint64_t budget_bytes, std::uint64_t bytes_per_row);

// Chunks needed for `rows` rows at `per_chunk` rows each: ceil(rows / per_chunk),
// 0 for no rows. Throws std::invalid_argument for rows < 0 or per_chunk < 1.
[[nodiscard]] std::int64_t chunk_count(std::int64_t rows, std::int64_t per_chunk);

// The chunk plan shared by every rank.
struct ChunkPlan {
  std::int64_t rows_per_chunk = 1;  // the most rows one chunk holds
  std::int64_t n_chunks = 0;        // the same on every rank: chunks of the largest share
};

// The plan for `n` rows over `size` ranks: n_chunks is the chunk count of the
// largest share (max_share), so that every rank, whatever its own share, takes
// part in the same number of collective reads and writes. 0 chunks only when n == 0.
[[nodiscard]] ChunkPlan plan_chunks(std::int64_t n, int size, std::uint64_t budget_bytes,
                                    std::uint64_t bytes_per_row);

// Chunk `index` of a rank's `rows` cut into `n_chunks` balanced, contiguous
// pieces (split_rows over the chunks, offset by rows.begin). With n_chunks from
// plan_chunks, every piece holds at most plan.rows_per_chunk rows; pieces may be
// empty (a rank with fewer rows than chunks, or none). Throws
// std::invalid_argument for n_chunks < 1 or index outside [0, n_chunks).
[[nodiscard]] Range chunk_range(Range rows, std::int64_t n_chunks, std::int64_t index);

// Parses a memory size for --memory-budget: a number (integer or decimal) with
// an optional unit, case-insensitive, spaces allowed between them:
//   (none) or B          bytes
//   K, KiB, M, MiB, G, GiB, T, TiB    powers of 1024 (so "512M" is 512 MiB, as in SLURM)
//   KB, MB, GB, TB                    powers of 1000 (SI)
// Fractions are rounded down to whole bytes ("1.5GiB" = 1610612736).
// Throws std::invalid_argument with a one-line message naming the text for
// anything else: empty, negative, zero, not a number, unknown unit, overflow.
[[nodiscard]] std::uint64_t parse_size(std::string_view text);

// A size for messages: "512 MiB", "1.5 GiB", "100 B" (powers of 1024, at
// most one decimal, trailing ".0" dropped), rounded to the nearest tenth, or
// up with round_up (a budget to suggest: parse_size of the text is never
// below bytes).
[[nodiscard]] std::string format_size(std::uint64_t bytes, bool round_up = false);

}  // namespace tessera::mpi

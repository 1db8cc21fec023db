// Decomposition of rows over ranks and chunks (mpi/decomposition.hpp): pure
// functions, tested without MPI.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "mpi/decomposition.hpp"

using namespace tessera::mpi;

namespace {

// The parts tile [0, n) in order, sizes differ by at most one, the larger first.
void expect_balanced(std::int64_t n, int size) {
  SCOPED_TRACE("n = " + std::to_string(n) + ", size = " + std::to_string(size));
  const auto parts = split_all(n, size);
  ASSERT_EQ(parts.size(), static_cast<std::size_t>(size));
  std::int64_t next = 0;
  for (int p = 0; p < size; ++p) {
    EXPECT_EQ(parts[p].begin, next);
    EXPECT_GE(parts[p].size(), 0);
    EXPECT_EQ(parts[p].size(), n / size + (p < n % size ? 1 : 0));
    EXPECT_EQ(parts[p], split_rows(n, size, p));
    next = parts[p].end;
  }
  EXPECT_EQ(next, n);
  EXPECT_EQ(max_share(n, size), parts[0].size());
}

}  // namespace

TEST(SplitRows, EvenSplit) {
  EXPECT_EQ(split_rows(12, 3, 0), (Range{0, 4}));
  EXPECT_EQ(split_rows(12, 3, 1), (Range{4, 8}));
  EXPECT_EQ(split_rows(12, 3, 2), (Range{8, 12}));
}

TEST(SplitRows, RemainderGoesToTheFirstRanks) {
  // 10 rows over 3 ranks: 4, 3, 3.
  EXPECT_EQ(split_rows(10, 3, 0), (Range{0, 4}));
  EXPECT_EQ(split_rows(10, 3, 1), (Range{4, 7}));
  EXPECT_EQ(split_rows(10, 3, 2), (Range{7, 10}));
  // 100 rows over 7 ranks: 15, 15, 14, 14, 14, 14, 14.
  const auto parts = split_all(100, 7);
  EXPECT_EQ(parts[0].size(), 15);
  EXPECT_EQ(parts[1].size(), 15);
  for (int p = 2; p < 7; ++p) EXPECT_EQ(parts[p].size(), 14);
}

TEST(SplitRows, MoreRanksThanRows) {
  // 3 rows over 7 ranks: ranks 0..2 one row each, ranks 3..6 none, at the end.
  for (int p = 0; p < 3; ++p) EXPECT_EQ(split_rows(3, 7, p), (Range{p, p + 1}));
  for (int p = 3; p < 7; ++p) {
    const Range r = split_rows(3, 7, p);
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(r, (Range{3, 3}));
  }
  EXPECT_EQ(max_share(3, 7), 1);
}

TEST(SplitRows, NoRows) {
  for (int p = 0; p < 3; ++p) EXPECT_EQ(split_rows(0, 3, p), (Range{0, 0}));
  EXPECT_EQ(max_share(0, 3), 0);
}

TEST(SplitRows, BalancedForManyShapes) {
  for (std::int64_t n : {0, 1, 2, 3, 7, 10, 64, 100, 1001, 2048})
    for (int size : {1, 2, 3, 4, 7, 8, 16, 1000}) expect_balanced(n, size);
}

TEST(SplitRows, LargeCounts) {
  const std::int64_t n = 5'000'000'000LL;  // beyond 32 bits
  expect_balanced(n, 7);
  EXPECT_EQ(split_rows(n, 7, 6).end, n);
}

TEST(SplitRows, BadArguments) {
  EXPECT_THROW((void)split_rows(-1, 3, 0), std::invalid_argument);
  EXPECT_THROW((void)split_rows(10, 0, 0), std::invalid_argument);
  EXPECT_THROW((void)split_rows(10, 3, 3), std::invalid_argument);
  EXPECT_THROW((void)split_rows(10, 3, -1), std::invalid_argument);
  EXPECT_THROW((void)split_all(10, 0), std::invalid_argument);
}

TEST(Chunks, RowsPerChunk) {
  EXPECT_EQ(rows_per_chunk(1000, 100), 10);
  EXPECT_EQ(rows_per_chunk(1099, 100), 10);   // rounded down
  EXPECT_EQ(rows_per_chunk(50, 100), 1);      // at least one row
  EXPECT_EQ(rows_per_chunk(0, 100), 1);
  EXPECT_EQ(rows_per_chunk(UINT64_MAX, 1), INT64_MAX);
  EXPECT_THROW((void)rows_per_chunk(1000, 0), std::invalid_argument);
}

TEST(Chunks, ChunkCount) {
  EXPECT_EQ(chunk_count(0, 4), 0);
  EXPECT_EQ(chunk_count(1, 4), 1);
  EXPECT_EQ(chunk_count(8, 4), 2);
  EXPECT_EQ(chunk_count(9, 4), 3);
  EXPECT_THROW((void)chunk_count(-1, 4), std::invalid_argument);
  EXPECT_THROW((void)chunk_count(4, 0), std::invalid_argument);
}

TEST(Chunks, PlanIsTheSameOnEveryRankAndCoversItsRows) {
  // 10 rows of 100 bytes over 3 ranks (4, 3, 3 rows) with room for 2 rows:
  // the largest share needs 2 chunks, so every rank makes 2.
  const ChunkPlan plan = plan_chunks(10, 3, 250, 100);
  EXPECT_EQ(plan.rows_per_chunk, 2);
  EXPECT_EQ(plan.n_chunks, 2);
  EXPECT_EQ(chunk_range(split_rows(10, 3, 0), 2, 0), (Range{0, 2}));
  EXPECT_EQ(chunk_range(split_rows(10, 3, 0), 2, 1), (Range{2, 4}));
  EXPECT_EQ(chunk_range(split_rows(10, 3, 1), 2, 0), (Range{4, 6}));
  EXPECT_EQ(chunk_range(split_rows(10, 3, 1), 2, 1), (Range{6, 7}));
}

TEST(Chunks, IdleRanksGetEmptyChunks) {
  // 3 rows over 7 ranks, one row per chunk: one chunk everywhere, empty on ranks 3..6.
  const ChunkPlan plan = plan_chunks(3, 7, 100, 100);
  EXPECT_EQ(plan.n_chunks, 1);
  for (int p = 0; p < 7; ++p) {
    const Range c = chunk_range(split_rows(3, 7, p), plan.n_chunks, 0);
    EXPECT_EQ(c.size(), p < 3 ? 1 : 0);
  }
  // No rows at all: no chunks.
  EXPECT_EQ(plan_chunks(0, 3, 100, 100).n_chunks, 0);
}

TEST(Chunks, EveryShapeTilesEachRankWithinTheBudget) {
  for (std::int64_t n : {1, 3, 7, 10, 33, 100, 257})
    for (int size : {1, 2, 3, 7, 12})
      for (std::uint64_t budget_rows : {1, 2, 3, 5, 1000}) {
        SCOPED_TRACE(std::to_string(n) + " rows, " + std::to_string(size) + " ranks, budget " +
                     std::to_string(budget_rows) + " rows");
        const std::uint64_t row_bytes = 4096;
        const ChunkPlan plan = plan_chunks(n, size, budget_rows * row_bytes + 17, row_bytes);
        EXPECT_EQ(plan.rows_per_chunk, static_cast<std::int64_t>(budget_rows));
        ASSERT_GE(plan.n_chunks, 1);
        std::int64_t covered = 0;
        for (int p = 0; p < size; ++p) {
          const Range rows = split_rows(n, size, p);
          std::int64_t next = rows.begin;
          for (std::int64_t c = 0; c < plan.n_chunks; ++c) {
            const Range piece = chunk_range(rows, plan.n_chunks, c);
            EXPECT_EQ(piece.begin, next);
            EXPECT_LE(piece.size(), plan.rows_per_chunk);
            next = piece.end;
          }
          EXPECT_EQ(next, rows.end);
          covered += rows.size();
        }
        EXPECT_EQ(covered, n);
        // The largest share needs every one of the chunks.
        EXPECT_EQ(plan.n_chunks, chunk_count(max_share(n, size), plan.rows_per_chunk));
      }
}

TEST(Chunks, BadChunkArguments) {
  EXPECT_THROW((void)chunk_range(Range{0, 4}, 0, 0), std::invalid_argument);
  EXPECT_THROW((void)chunk_range(Range{0, 4}, 2, 2), std::invalid_argument);
  EXPECT_THROW((void)chunk_range(Range{4, 2}, 2, 0), std::invalid_argument);
}

TEST(ParseSize, Units) {
  EXPECT_EQ(parse_size("1024"), 1024u);
  EXPECT_EQ(parse_size("100B"), 100u);
  EXPECT_EQ(parse_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_size("512m"), 512ull << 20);
  EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_size("4G"), 4ull << 30);
  EXPECT_EQ(parse_size("4 GiB"), 4ull << 30);
  EXPECT_EQ(parse_size("1.5GiB"), 1610612736u);
  EXPECT_EQ(parse_size("1.5g"), 1610612736u);
  EXPECT_EQ(parse_size("2T"), 2ull << 40);
  EXPECT_EQ(parse_size("64k"), 65536u);
  EXPECT_EQ(parse_size("64KiB"), 65536u);
  EXPECT_EQ(parse_size("1KB"), 1000u);
  EXPECT_EQ(parse_size("4GB"), 4'000'000'000u);
  EXPECT_EQ(parse_size("2.5MB"), 2'500'000u);
  EXPECT_EQ(parse_size(" 8G "), 8ull << 30);
  EXPECT_EQ(parse_size(".5K"), 512u);
  EXPECT_EQ(parse_size("0.3K"), 307u);  // 307.2 rounded down
  EXPECT_EQ(parse_size("18446744073709551615"), UINT64_MAX);
}

TEST(ParseSize, BadText) {
  for (const char* bad : {"", "   ", "M", "G4", "-1G", "4X", "4 G B", "4GiBs", "1.2.3G", "0",
                          "0.0001", "abc", "16E", "18446744073709551616", "17179869184G"}) {
    SCOPED_TRACE(std::string("'") + bad + "'");
    try {
      (void)parse_size(bad);
      ADD_FAILURE() << "accepted";
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::string("'") + bad + "'"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

TEST(FormatSize, Readable) {
  EXPECT_EQ(format_size(100), "100 B");
  EXPECT_EQ(format_size(1024), "1 KiB");
  EXPECT_EQ(format_size(512ull << 20), "512 MiB");
  EXPECT_EQ(format_size(1610612736), "1.5 GiB");
  EXPECT_EQ(format_size(parse_size("1.5GiB")), "1.5 GiB");
  // Rounded up: a suggested budget is never short of what it names.
  EXPECT_EQ(format_size(parse_size("71.1MiB") + 1), "71.1 MiB");
  EXPECT_EQ(format_size(parse_size("71.1MiB") + 1, true), "71.2 MiB");
  EXPECT_EQ(format_size(512ull << 20, true), "512 MiB");
  for (std::uint64_t b : {std::uint64_t(1), std::uint64_t(1023), std::uint64_t(1025), std::uint64_t(74553329),
                          std::uint64_t(3) << 40, (std::uint64_t(5) << 30) + 7}) {
    std::string text = format_size(b, true);
    text.erase(text.find(' '), 1);  // "71.2 MiB" -> "71.2MiB", as a command line gives it
    EXPECT_GE(parse_size(text), b) << text;
  }
}

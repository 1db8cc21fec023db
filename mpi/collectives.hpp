// The collective operations of tessera's jobs, each collective over `comm`
// (every rank calls it, with the same arguments where they say so).
//
// Order. A result that depends on where rows or values were computed would
// differ between rank counts; these gathers place every rank's rows where
// split_rows puts them, so the caller sees the whole array in row order
// whatever the number of ranks.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tessera::mpi {

// True on every rank when local_ok is true on every rank.
[[nodiscard]] bool all_ok(MPI_Comm comm, bool local_ok);

// Every rank passes its own error ("" when fine) and gets back the message of
// the lowest-numbered rank that failed, or "" when none did.
[[nodiscard]] std::string agree_error(MPI_Comm comm, const std::string& local_error);

// Rank 0's string, on every rank.
[[nodiscard]] std::string broadcast_from_root(MPI_Comm comm, const std::string& s);

// Every rank holds rows split_rows(n_rows, size, rank) of an array of
// `per_row` values a row; every rank gets all n_rows rows, in row order.
[[nodiscard]] std::vector<double> allgather_rows(MPI_Comm comm, std::span<const double> mine,
                                                 std::int64_t n_rows, std::int64_t per_row);
[[nodiscard]] std::vector<std::int64_t> allgather_rows(MPI_Comm comm, std::span<const std::int64_t> mine,
                                                       std::int64_t n_rows, std::int64_t per_row);

// Every rank's string, in rank order, on rank 0 (an empty list elsewhere).
[[nodiscard]] std::vector<std::string> gather_to_root(MPI_Comm comm, const std::string& mine);

// Element-wise sum (integers) and maximum over the ranks, on every rank.
[[nodiscard]] std::vector<std::int64_t> sum_all(MPI_Comm comm, std::span<const std::int64_t> values);
[[nodiscard]] std::vector<double> max_all(MPI_Comm comm, std::span<const double> values);
[[nodiscard]] std::int64_t max_all(MPI_Comm comm, std::int64_t value);

}  // namespace tessera::mpi

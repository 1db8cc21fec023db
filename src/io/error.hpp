// Errors of tessera::io and the agreement of errors across MPI ranks.
//
// Every failure of the io library is a tessera::io::Error whose what() is one
// line naming the file and, where there is one, the dataset:
//   "cube.h5: no such file"
//   "cube.h5: /data: has 2 dimensions [4, 5], expected 3"
// The CLI prints it after "tessera: " and exits with status 2.
//
// Deadlocks. Parallel HDF5 calls are collective: if one rank throws and leaves
// while the others enter the next collective call, the others wait forever.
// The io library is written so that its errors happen on every rank alike:
//  - errors that come from the file's contents (missing dataset, wrong rank,
//    type, empty) are seen identically by every rank, since all ranks make the
//    same calls on the same file;
//  - errors that come from one rank's own arguments (a slab outside the
//    dataset, a buffer of the wrong size) are checked first and agreed with
//    mpi::agree_error (mpi/collectives.hpp) before the collective transfer, so every rank throws the
//    same message;
//  - file-system checks (does the file exist, is it HDF5, does the output
//    exist) are made by rank 0 and broadcast.
// Callers use the same tools for their own checks (bad options, non-finite
// sweep values, ...): run them on every rank, or on one rank and agree, with
// throw_if_any / run_agreed below.
#pragma once

#include <mpi.h>

#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace tessera::io {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "file: what" or "file: dataset: what"; newlines in `what` become spaces so
// that the message stays one line.
[[nodiscard]] std::string message(const std::string& file, const std::string& dataset,
                                  const std::string& what);

// Collective over comm. When any rank passes a non-empty message, every rank
// throws Error with the agreed message (that of the lowest failing rank,
// mpi::agree_error).
void throw_if_any(MPI_Comm comm, const std::string& local_error);

// Collective over comm. Runs f() on this rank, catching any std::exception,
// then agrees: when f threw on any rank, every rank throws Error with the
// message of the lowest failing rank; otherwise returns f's result. f itself
// must make no collective call that another rank could skip by failing first.
template <class F>
auto run_agreed(MPI_Comm comm, F&& f) -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  std::string error;
  if constexpr (std::is_void_v<R>) {
    try {
      f();
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
    throw_if_any(comm, error);
  } else {
    std::optional<R> result;
    try {
      result.emplace(f());
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
    throw_if_any(comm, error);
    return std::move(*result);
  }
}

// Turns off HDF5's printing of its error stack to stderr (tessera reports
// errors itself, in one line). Local; called by every InputFile and
// OutputFile constructor, harmless to call again.
void silence_hdf5_errors();

}  // namespace tessera::io

// The stamp of part.hpp in HDF5 files: written by a job, read back by
// `tessera merge` and by `--resume`.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mpi/collectives.hpp"
#include "io/h5_input.hpp"
#include "io/h5_output.hpp"
#include "part.hpp"

namespace tessera::cli {

// Collective, like every OutputFile call. Writes the stamp's attributes except
// `complete` (fingerprint_text and its hash included).
void write_stamp(io::OutputFile& out, const PartStamp& stamp);

// Collective. Writes complete = 1: the last attribute before commit().
void write_complete(io::OutputFile& out);

// Reads the stamp of an open file; attributes that are missing leave their
// defaults (complete false, count 1, ...). Throws io::Error for unreadable ones.
[[nodiscard]] PartStamp read_stamp(io::InputFile& in);

// Expected datasets of an output and their dimensions.
using Shapes = std::vector<std::pair<std::string, std::vector<std::uint64_t>>>;

// Local (opens `path` on MPI_COMM_SELF). "" when `path` is a complete output
// with this stamp (part, rows, total, datasets, fingerprint) and every dataset of
// `shapes` present with those dimensions; else the reason it is not.
[[nodiscard]] std::string verify_output(const std::string& path, const PartStamp& expected,
                                        const Shapes& shapes);

// Collective. What to do with an existing output before a job starts:
//  - no file at `path`: returns false (run);
//  - resume and verify_output() passes: rank 0 says so in one line (even when
//    quiet: it is why nothing was done), returns true (skip);
//  - otherwise a file that exists is left to OutputFile (refused without force,
//    replaced with it); with resume and without force the refusal says why the
//    file is not taken as done.
[[nodiscard]] bool skip_complete_output(MPI_Comm comm, const std::string& path, bool resume, bool force,
                                        const PartStamp& expected, const Shapes& shapes);

// Local. Identity of a file for fingerprints: "size=N mtime_ns=T", or
// "missing" when it cannot be read.
[[nodiscard]] std::string file_identity(const std::string& path);

// Collective: rank 0's string on every rank.
using mpi::broadcast_from_root;

}  // namespace tessera::cli

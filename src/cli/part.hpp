// Parts of a job's output (`--part I/N`, `tessera merge`, `--resume`).
//
// A job whose output is a table of rows (the rows of the fit's maps; the
// pairs of an xcorr) can be cut into N parts: part I (numbered from 1) covers
// the contiguous rows mpi::split_rows(total, N, I - 1). A part file holds those
// rows of every row-split dataset, whole copies of the other datasets (the
// sweep), and a stamp of root attributes:
//
//   part_index, part_count      I and N (int64)
//   part_rows                   [row0, row1) (float64 pair)
//   part_total_rows             rows of the whole output (int64)
//   part_datasets               the row-split datasets (strings)
//   part_summed                 attributes that tessera merge adds up over the parts
//   fingerprint, fingerprint_text   what the results depend on (input identity and
//                                   options, not ranks, threads or the part) and its hash
//   complete                    1, written last, just before the file is renamed
//
// An unpartitioned output is part 1 of 1 with the same stamp, so a merged file
// and a plain run carry the same attributes, and `--resume` works for both.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mpi/decomposition.hpp"

namespace tessera::cli {

struct Part {
  int index = 1;  // 1 .. count
  int count = 1;
  friend bool operator==(const Part&, const Part&) = default;
};

// Looks up an environment variable (nullptr when unset); std::getenv by default.
using EnvLookup = std::function<const char*(const char*)>;

// Parses --part. "" gives the whole output (1/1) whatever the environment.
// "I/N": 1 <= I <= N. "auto": I and N from a SLURM array submitted as
// --array=1-N (SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, checked against
// SLURM_ARRAY_TASK_MIN = 1 and SLURM_ARRAY_TASK_MAX = N, so that an array
// 0-3, with steps, or a resubmitted single task is refused rather than cut
// differently). Throws UsageError with a one-line message.
[[nodiscard]] Part parse_part(const std::string& text, const EnvLookup& env = {});

// "2/3".
[[nodiscard]] std::string part_name(const Part& p);

// The rows of part p of `total` rows.
[[nodiscard]] mpi::Range part_range(std::int64_t total, const Part& p);

// 16 hexadecimal digits of the 64-bit FNV-1a hash of `text`.
[[nodiscard]] std::string fingerprint_of(const std::string& text);

// The stamp of a part file, as written and as read back.
struct PartStamp {
  Part part;
  mpi::Range rows;
  std::int64_t total_rows = 0;
  std::vector<std::string> datasets;  // row-split
  std::vector<std::string> summed;    // attributes added up by merge
  std::string fingerprint_text;
  bool complete = false;
  [[nodiscard]] std::string fingerprint() const { return fingerprint_of(fingerprint_text); }
};

// The first line where two fingerprint texts differ, for messages:
// "tol=1e-06 vs tol=1e-05".
[[nodiscard]] std::string first_difference(const std::string& a, const std::string& b);

// What a merge of these parts (file name -> stamp) lacks: "" when they are all
// complete, share one fingerprint, part count, total and datasets, and hold
// every part 1..N exactly once with the rows of split_rows; else a one-line
// reason naming the files (overlap, gap, mismatch).
[[nodiscard]] std::string check_coverage(const std::vector<std::pair<std::string, PartStamp>>& parts);

}  // namespace tessera::cli

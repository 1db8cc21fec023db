// The table that `tessera xcorr --csv` and `tessera merge --csv` write:
//   index,image,template,y,x,peak,sharpness,peak_ratio[,sub_y,sub_x]
//   [,top1_y,top1_x,top1_peak, ..., topK_y,topK_x,topK_peak]
// one row per pair, in input order.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tessera::cli {

// Why the table cannot be written at `path` ("" when it can): a directory, an
// existing file without `force`, or a missing parent directory. Checked before
// any work, like the output file.
std::string csv_problem(const std::string& path, bool force);

// The --top K columns: top_coords [p][K][2] and top_peaks [p][K] (k = 0: none).
struct CsvTopColumns {
  std::int64_t k = 0;
  std::span<const std::int64_t> coords;
  std::span<const float> peaks;
};

// The results of pairs first_index, first_index + 1, ...: pairs [p][2] (image,
// template), coords [p][2] (y, x), peaks [p], quality [p][2] (sharpness, peak
// ratio), subpixel [p][2] (empty: no sub_y, sub_x columns) and the top
// candidates (missing ones as -1,-1,nan). Written as
// PATH.partial, renamed when complete; returns "" or a one-line error (and then
// leaves no file).
std::string write_xcorr_csv(const std::string& path, std::int64_t first_index,
                            const std::vector<std::int64_t>& pairs,
                            const std::vector<std::int64_t>& coords,
                            const std::vector<float>& peaks, const std::vector<float>& quality,
                            const std::vector<double>& subpixel, const CsvTopColumns& top = {});

}  // namespace tessera::cli

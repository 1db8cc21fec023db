// The Melbourne group's binary spools, as qdmpy reads them: float32 values
// after two int32 (LabVIEW's array header), frames [AOIHeight][AOIWidth], and
// beside the spool FILE_metaSpool.txt: the sweep on its first line
// (tab-separated), then "key: value" lines. Twice as many frames as sweep
// values are alternating signal and reference frames (signal first). qdmpy
// shows a frame transposed, AOIWidth rows by AOIHeight columns (LabVIEW swaps
// the two names), and so does read_rows.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tessera::io {

struct NpyArray;
class NpyMapping;

class QdmpySpool {
 public:
  // Reads the metadata file and checks the spool's size against it. Throws
  // io::Error, one line naming the file.
  explicit QdmpySpool(const std::string& path);
  ~QdmpySpool();

  std::vector<double> sweep;
  std::vector<std::pair<std::string, std::string>> metadata;  // key: value, as written
  std::int64_t aoi_height = 0, aoi_width = 0;
  bool sigref = false;  // 2 * sweep.size() frames
  std::int64_t rows() const { return aoi_width; }   // as qdmpy shows a frame
  std::int64_t cols() const { return aoi_height; }

  // Rows [r0, r1) of the shown frames, the signal's then (sigref) the
  // reference's: out[((d * n + i) * (r1 - r0) + y) * cols() + x].
  void read_rows(std::int64_t r0, std::int64_t r1, std::vector<double>& out) const;

 private:
  std::unique_ptr<NpyArray> layout_;
  std::unique_ptr<NpyMapping> map_;
};

}  // namespace tessera::io

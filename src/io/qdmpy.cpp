#include "qdmpy.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "error.hpp"
#include "npy.hpp"

namespace tessera::io {

QdmpySpool::~QdmpySpool() = default;

QdmpySpool::QdmpySpool(const std::string& path) {
  const std::string meta_path = path + "_metaSpool.txt";
  std::ifstream meta(meta_path);
  if (!meta) throw Error(path + ": no metadata file " + meta_path + " beside it");
  std::string line;
  std::getline(meta, line);
  std::istringstream first(line);
  for (std::string field; std::getline(first, field, '\t');) {
    if (field.find_first_not_of(" \r") == std::string::npos) continue;
    try {
      sweep.push_back(std::stod(field));
    } catch (const std::exception&) {
      throw Error(meta_path + ": the first line must be the tab-separated sweep; '" + field + "' is not a number");
    }
  }
  if (sweep.empty()) throw Error(meta_path + ": the first line (the sweep) is empty");
  while (std::getline(meta, line)) {
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    if (const auto tab = key.rfind('\t'); tab != std::string::npos) key = key.substr(tab + 1);
    metadata.emplace_back(key, value);
    std::int64_t* size = key == "AOIHeight" ? &aoi_height : key == "AOIWidth" ? &aoi_width : nullptr;
    if (size == nullptr) continue;
    try {
      *size = std::stoll(value);
    } catch (const std::exception&) {
      throw Error(meta_path + ": " + key + " is '" + value + "', expected a whole number");
    }
  }
  if (aoi_height < 1 || aoi_width < 1) throw Error(meta_path + ": no AOIHeight and AOIWidth lines (key: value)");
  const std::uint64_t bytes = std::filesystem::file_size(path);
  if (bytes < 8 || (bytes - 8) % 4 != 0) throw Error(path + ": not a spool of float32 values after an 8-byte header");
  const std::int64_t values = std::int64_t((bytes - 8) / 4), frame = aoi_height * aoi_width;
  const std::int64_t frames = values / frame, n = std::int64_t(sweep.size());
  if (values % frame != 0 || (frames != n && frames != 2 * n))
    throw Error(path + ": " + std::to_string(values) + " values are not " + std::to_string(n) + " or " +
                std::to_string(2 * n) + " frames of AOIHeight x AOIWidth = " + std::to_string(aoi_height) + " x " +
                std::to_string(aoi_width) + " (" + std::to_string(n) + " sweep values in " + meta_path + ")");
  sigref = frames == 2 * n;
  layout_ = std::make_unique<NpyArray>();
  layout_->path = path;
  layout_->descr = "<f4";
  layout_->data_offset = 8;
  layout_->shape = {frames, aoi_height, aoi_width};
  map_ = std::make_unique<NpyMapping>(*layout_);
}

void QdmpySpool::read_rows(std::int64_t r0, std::int64_t r1, std::vector<double>& out) const {
  const std::int64_t n = std::int64_t(sweep.size()), rows = r1 - r0, sets = sigref ? 2 : 1, H = aoi_height,
                     W = aoi_width;
  out.resize(static_cast<std::size_t>(sets * n * rows * H));
  for (std::int64_t d = 0; d < sets; ++d)
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t f = sigref ? 2 * i + d : i;
      for (std::int64_t y = 0; y < rows; ++y)
        for (std::int64_t x = 0; x < H; ++x)  // shown (y, x) = frame [x][y]
          out[std::size_t(((d * n + i) * rows + y) * H + x)] = map_->value((f * H + x) * W + r0 + y);
    }
}

}  // namespace tessera::io

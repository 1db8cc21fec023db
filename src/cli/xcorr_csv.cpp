#include "xcorr_csv.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace tessera::cli {

std::string csv_problem(const std::string& path, bool force) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) return path + ": is a directory";
  if (fs::exists(p, ec) && !force) return path + ": exists (use --force to overwrite)";
  if (!p.parent_path().empty() && !fs::is_directory(p.parent_path(), ec))
    return path + ": no such directory";
  return "";
}

std::string write_xcorr_csv(const std::string& path, std::int64_t first_index,
                            const std::vector<std::int64_t>& pairs,
                            const std::vector<std::int64_t>& coords,
                            const std::vector<float>& peaks, const std::vector<float>& quality,
                            const std::vector<double>& subpixel, const CsvTopColumns& top) {
  const std::string partial = path + ".partial";
  std::string error;
  {
    std::ofstream f(partial);
    const bool sub = !subpixel.empty();
    f << "index,image,template,y,x,peak,sharpness,peak_ratio";
    if (sub) f << ",sub_y,sub_x";
    for (std::int64_t c = 1; c <= top.k; ++c)
      f << ",top" << c << "_y,top" << c << "_x,top" << c << "_peak";
    f << '\n';
    char buf[256];
    for (std::size_t i = 0; i < peaks.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%lld,%lld,%lld,%lld,%lld,%.9g,%.9g,%.9g",
                    (long long)(first_index + std::int64_t(i)), (long long)pairs[2 * i],
                    (long long)pairs[2 * i + 1], (long long)coords[2 * i],
                    (long long)coords[2 * i + 1], double(peaks[i]), double(quality[2 * i]),
                    double(quality[2 * i + 1]));
      f << buf;
      if (sub) {
        std::snprintf(buf, sizeof buf, ",%.17g,%.17g", subpixel[2 * i], subpixel[2 * i + 1]);
        f << buf;
      }
      for (std::size_t c = i * std::size_t(top.k); c < (i + 1) * std::size_t(top.k); ++c) {
        std::snprintf(buf, sizeof buf, ",%lld,%lld,%.9g", (long long)top.coords[2 * c],
                      (long long)top.coords[2 * c + 1], double(top.peaks[c]));
        f << buf;
      }
      f << '\n';
    }
    if (!f.flush()) error = path + ": cannot write";
  }
  std::error_code ec;
  if (error.empty()) std::filesystem::rename(partial, path, ec);
  if (ec) error = path + ": cannot rename the partial file: " + ec.message();
  if (!error.empty()) std::filesystem::remove(partial, ec);
  return error;
}

}  // namespace tessera::cli

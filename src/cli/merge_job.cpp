// `tessera merge PART... -o OUT`: joins the part files of a job (part.hpp)
// into the file one unpartitioned run would have written: the same datasets,
// bit for bit, and the same attributes, except command_line (the merge's),
// the part_summed ones (ranks, timings, state counts: added up over the parts)
// and part_command_lines (added: each part's command line, in part order).
//
// The merge is file copying, so rank 0 does it alone (files opened on
// MPI_COMM_SELF) while the other ranks wait for its verdict; an error is then
// one line on every rank and exit status 2, and no output is left behind.
#include "merge_job.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>

#include "io/h5_copy.hpp"
#include "io/h5_input.hpp"
#include "io/h5_output.hpp"
#include "part_file.hpp"
#include "xcorr_csv.hpp"

namespace tessera::cli {

namespace {

namespace fs = std::filesystem;

// What merge needs of one part, read in a first pass (files are opened one at
// a time, so that thousands of parts do not exhaust file handles).
struct PartInfo {
  std::string path;
  PartStamp stamp;
  std::map<std::string, io::DatasetInfo> datasets;
  std::string command_line;
};

bool is_split(const PartStamp& s, const std::string& d) {
  return std::find(s.datasets.begin(), s.datasets.end(), d) != s.datasets.end();
}

PartInfo read_part(const std::string& path) {
  io::InputFile in(MPI_COMM_SELF, path);
  PartInfo p;
  p.path = path;
  p.stamp = read_stamp(in);
  if (!in.has_attribute("/", "part_datasets"))
    throw UsageError(path + ": not a tessera output with part attributes (no part_datasets)");
  for (const auto& d : io::list_objects(in.id(), path).datasets) p.datasets.emplace(d, in.describe(d));
  if (in.has_attribute("/", "command_line")) p.command_line = in.read_attribute_string("/", "command_line");
  return p;
}

// Every part holds the same datasets: the row-split ones with its own rows
// and the others of part 1, and the others equal to part 1's bit for bit.
void check_datasets(const std::vector<PartInfo>& parts) {
  const PartInfo& first = parts.front();
  for (const auto& p : parts) {
    for (const auto& d : p.stamp.datasets)
      if (!p.datasets.count(d)) throw UsageError(p.path + ": " + d + ": missing");
    for (const auto& [name, info] : first.datasets)
      if (!p.datasets.count(name)) throw UsageError(p.path + ": " + name + ": missing (" + first.path + " has it)");
    for (const auto& [name, info] : p.datasets) {
      const auto it = first.datasets.find(name);
      if (it == first.datasets.end())
        throw UsageError(p.path + ": " + name + ": not in " + first.path);
      const io::DatasetInfo& f = it->second;
      const bool split = is_split(p.stamp, name);
      const std::uint64_t rows = std::uint64_t(p.stamp.rows.size());
      bool ok = info.type == f.type && info.dims.size() == f.dims.size() && io::dtype_of(info.type);
      if (ok && split)
        ok = !info.dims.empty() && info.dims[0] == rows &&
             std::equal(info.dims.begin() + 1, info.dims.end(), f.dims.begin() + 1);
      if (ok && !split) ok = info.dims == f.dims && !info.dims.empty();
      if (!ok)
        throw UsageError(p.path + ": " + name + " is " + info.type + " with " +
                         std::to_string(info.dims.size()) + " dimensions, not like " + first.path +
                         (split ? " with its part's " + std::to_string(rows) + " rows" : ""));
    }
  }
}

template <class T> std::vector<T> raw_values(const io::RawDataset& d, const char* type,
                                              const std::string& what) {
  if (d.type != type) throw UsageError(what + " is " + d.type + ", not " + type);
  std::vector<T> v(d.bytes.size() / sizeof(T));
  std::memcpy(v.data(), d.bytes.data(), v.size() * sizeof(T));
  return v;
}

// The pairs of an xcorr job, read from the input file that its output (or
// part) `path` records; throws unless `path` is a tessera xcorr output.
std::vector<std::int64_t> xcorr_pairs(const std::string& path) {
  std::string input, pairs_name;
  {
    io::InputFile out(MPI_COMM_SELF, path);
    if (!out.has("/coords") || !out.has_attribute("/", "input") ||
        !out.has_attribute("/", "pairs"))
      throw UsageError("--csv: " + path + " is not a tessera xcorr output");
    input = out.read_attribute_string("/", "input");
    pairs_name = out.read_attribute_string("/", "pairs");
  }
  try {
    io::InputFile in(MPI_COMM_SELF, input);
    return in.read_integers(pairs_name, 2, "[p, 2]");
  } catch (const std::exception& e) {
    throw UsageError("--csv: the pairs of the xcorr input " + input + ": " + e.what());
  }
}

// The CSV table of the merged xcorr output (xcorr_csv.hpp).
void write_merged_csv(const MergeRequest& r, const std::vector<std::int64_t>& pairs) {
  io::InputFile out(MPI_COMM_SELF, r.output);
  const auto raw = [&](const std::string& d) { return io::read_raw(out.id(), r.output, d); };
  const auto coords = raw_values<std::int64_t>(raw("/coords"), "int64", r.output + ": /coords");
  const auto peaks = raw_values<float>(raw("/peaks"), "float32", r.output + ": /peaks");
  const auto quality = raw_values<float>(raw("/quality"), "float32", r.output + ": /quality");
  std::vector<double> sub;
  if (out.has("/subpixel"))
    sub = raw_values<double>(raw("/subpixel"), "float64", r.output + ": /subpixel");
  const std::size_t n = peaks.size();
  std::vector<std::int64_t> top_coords;
  std::vector<float> top_peaks;
  std::size_t k = 0;
  if (out.has("/top_peaks")) {  // written with --top K: /top_coords [p, K, 2], /top_peaks [p, K]
    const io::RawDataset tp = raw("/top_peaks");
    k = tp.dims.size() == 2 ? std::size_t(tp.dims[1]) : 0;
    top_peaks = raw_values<float>(tp, "float32", r.output + ": /top_peaks");
    top_coords = raw_values<std::int64_t>(raw("/top_coords"), "int64", r.output + ": /top_coords");
  }
  if (pairs.size() != 2 * n || coords.size() != 2 * n || quality.size() != 2 * n ||
      (!sub.empty() && sub.size() != 2 * n) || top_peaks.size() != n * k || top_coords.size() != 2 * n * k)
    throw UsageError("--csv: the input holds " + std::to_string(pairs.size() / 2) + " pairs, " +
                     r.output + " " + std::to_string(n) + " results");
  if (const std::string e = write_xcorr_csv(r.csv, 0, pairs, coords, peaks, quality, sub,
                                            {std::int64_t(k), top_coords, top_peaks});
      !e.empty())
    throw UsageError(e);
}

// The parts, read and checked (exact coverage, same fingerprint, same
// datasets), in the order of their rows.
std::vector<PartInfo> checked_parts(const MergeRequest& r) {
  std::error_code ec;
  for (const auto& p : r.parts)
    if (fs::equivalent(p, r.output, ec)) throw UsageError(r.output + ": the output is one of the parts");
  std::vector<PartInfo> parts;
  for (const auto& p : r.parts) parts.push_back(read_part(p));
  std::vector<std::pair<std::string, PartStamp>> stamps;
  for (const auto& p : parts) stamps.emplace_back(p.path, p.stamp);
  if (const std::string why = check_coverage(stamps); !why.empty()) throw UsageError(why);
  std::sort(parts.begin(), parts.end(),
            [](const PartInfo& a, const PartInfo& b) { return a.stamp.part.index < b.stamp.part.index; });
  check_datasets(parts);
  return parts;
}

// The stamp and dataset shapes of the whole output the parts make up.
std::pair<PartStamp, Shapes> whole_output(const PartInfo& first) {
  PartStamp whole = first.stamp;
  whole.part = {1, 1};
  whole.rows = {0, whole.total_rows};
  Shapes shapes;
  for (const auto& [name, info] : first.datasets) {
    auto dims = info.dims;
    if (is_split(whole, name)) dims[0] = std::uint64_t(whole.total_rows);
    shapes.emplace_back(name, dims);
  }
  return {whole, shapes};
}

// With --resume: true when the output is already this merge (verified);
// otherwise an existing output is refused unless --force.
bool already_merged(const MergeRequest& r, const PartStamp& whole, const Shapes& shapes) {
  std::error_code ec;
  if (!r.resume || !fs::exists(fs::symlink_status(r.output, ec))) return false;
  std::string why;
  try {
    why = verify_output(r.output, whole, shapes);
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (why.empty()) return true;
  if (!r.force)
    throw UsageError(r.output + " exists but is not the merge of these parts (" + why + "); --force replaces it");
  return false;
}

// Copies every part's rows into the output (datasets that are not split must
// equal part 1's, bit for bit) and adds up the summed attributes. Returns the
// parts' command lines.
std::vector<std::string> copy_parts(io::OutputFile& out, const std::vector<PartInfo>& parts,
                                    const PartStamp& whole, std::map<std::string, std::vector<double>>& sums) {
  const PartInfo& first = parts.front();
  std::vector<std::string> command_lines;
  for (const auto& p : parts) {
    io::InputFile in(MPI_COMM_SELF, p.path);
    for (const auto& [name, info] : p.datasets) {
      if (!is_split(whole, name) && &p != &first) {
        if (io::read_raw(in.id(), p.path, name).bytes != io::read_raw(out.id(), out.partial_path(), name).bytes)
          throw UsageError(p.path + ": " + name + " differs from " + first.path + "'s");
        continue;
      }
      const auto raw = io::read_raw(in.id(), p.path, name);
      io::write_raw_rows(out.id(), out.partial_path(), name,
                         is_split(whole, name) ? std::uint64_t(p.stamp.rows.begin) : 0, raw);
    }
    for (const auto& name : whole.summed) {
      if (!in.has_attribute("/", name)) throw UsageError(p.path + ": no attribute " + name);
      const auto v = in.read_attribute_doubles("/", name);
      auto& sum = sums[name];
      if (sum.empty()) sum.assign(v.size(), 0.0);
      if (sum.size() != v.size()) throw UsageError(p.path + ": attribute " + name + " has another length");
      for (std::size_t i = 0; i < v.size(); ++i) sum[i] += v[i];
    }
    command_lines.push_back(p.command_line);
  }
  return command_lines;
}

// The attributes of part 1 (all groups and datasets), without its part stamp.
void copy_attributes(io::OutputFile& out, const PartInfo& first) {
  io::InputFile in(MPI_COMM_SELF, first.path);
  const auto objects = io::list_objects(in.id(), first.path);
  std::vector<std::string> all = objects.groups;
  all.insert(all.end(), objects.datasets.begin(), objects.datasets.end());
  for (const auto& g : objects.groups)
    if (g != "/") out.create_group(g);  // even one without datasets
  for (const auto& obj : all)
    for (const auto& a : io::attribute_names(in.id(), first.path, obj)) {
      if (obj == "/" && (a.rfind("part_", 0) == 0 || a == "complete")) continue;
      io::copy_attribute(in.id(), first.path, out.id(), out.partial_path(), obj, a);
    }
}

// The merge itself (merge_on_root). Returns the line to print.
std::string merge_output(const MergeRequest& r) {
  const std::vector<PartInfo> parts = checked_parts(r);
  const PartInfo& first = parts.front();
  const auto [whole, shapes] = whole_output(first);
  if (already_merged(r, whole, shapes))
    return r.output + " is complete (merged from the same parts' input and options): skipped";
  io::OutputFile out(MPI_COMM_SELF, r.output, r.force);
  for (const auto& [name, dims] : shapes) out.create_dataset(name, *io::dtype_of(first.datasets.at(name).type), dims);
  std::map<std::string, std::vector<double>> sums;
  const std::vector<std::string> command_lines = copy_parts(out, parts, whole, sums);
  // Attributes of part 1, then the ones that describe the whole.
  copy_attributes(out, first);
  for (const auto& [name, sum] : sums) io::overwrite_attribute(out.id(), out.partial_path(), "/", name, sum);
  out.write_attribute("/", "command_line", r.command_line);
  out.write_attribute("/", "part_command_lines", command_lines);
  write_stamp(out, whole);
  write_complete(out);
  out.commit();
  return "wrote " + r.output + " (" + std::to_string(whole.total_rows) + " rows) from " +
         std::to_string(parts.size()) + " part(s)";
}

// Runs on rank 0 only. Returns the line to print; throws on any problem.
std::string merge_on_root(const MergeRequest& r) {
  if (!r.csv.empty())
    // --resume may rewrite the table of a verified output: it is derived data.
    if (const std::string why = csv_problem(r.csv, r.force || r.resume); !why.empty())
      throw UsageError(why);
  // The table's pairs first, so that a fit merge or an unreadable input fails
  // before anything is written.
  const std::vector<std::int64_t> pairs =
      r.csv.empty() ? std::vector<std::int64_t>{} : xcorr_pairs(r.parts.front());
  std::string line = merge_output(r);
  if (!r.csv.empty()) {
    write_merged_csv(r, pairs);
    line += "; wrote " + r.csv;
  }
  return line;
}

}  // namespace

int run_merge(const MergeRequest& r, const RunContext& ctx) {
  std::string error, line;
  if (ctx.is_root()) {
    try {
      line = merge_on_root(r);
    } catch (const std::exception& e) {
      error = e.what()[0] != '\0' ? e.what() : "merge failed";
    }
  }
  error = broadcast_from_root(MPI_COMM_WORLD, error);
  if (!error.empty()) throw UsageError(error);
  if (ctx.is_root() && (!r.quiet || line.find("skipped") != std::string::npos))
    std::fprintf(stderr, "tessera: %s\n", line.c_str());
  return 0;
}

}  // namespace tessera::cli

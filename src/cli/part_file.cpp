#include "part_file.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <system_error>

#include "command.hpp"

namespace tessera::cli {

namespace fs = std::filesystem;

void write_stamp(io::OutputFile& out, const PartStamp& s) {
  out.write_attribute("/", "part_index", std::int64_t(s.part.index));
  out.write_attribute("/", "part_count", std::int64_t(s.part.count));
  out.write_attribute("/", "part_rows", std::vector<double>{double(s.rows.begin), double(s.rows.end)});
  out.write_attribute("/", "part_total_rows", s.total_rows);
  out.write_attribute("/", "part_datasets", s.datasets);
  out.write_attribute("/", "part_summed", s.summed);
  out.write_attribute("/", "fingerprint_text", s.fingerprint_text);
  out.write_attribute("/", "fingerprint", s.fingerprint());
}

void write_complete(io::OutputFile& out) { out.write_attribute("/", "complete", std::int64_t(1)); }

PartStamp read_stamp(io::InputFile& in) {
  PartStamp s;
  auto number = [&](const char* name, double fallback) {
    if (!in.has_attribute("/", name)) return fallback;
    const auto v = in.read_attribute_doubles("/", name);
    return v.size() == 1 ? v[0] : fallback;
  };
  s.complete = number("complete", 0) == 1;
  s.part.index = int(number("part_index", 1));
  s.part.count = int(number("part_count", 1));
  s.total_rows = std::int64_t(number("part_total_rows", -1));
  if (in.has_attribute("/", "part_rows")) {
    const auto r = in.read_attribute_doubles("/", "part_rows");
    if (r.size() == 2) s.rows = {std::int64_t(r[0]), std::int64_t(r[1])};
  }
  if (in.has_attribute("/", "part_datasets")) s.datasets = in.read_attribute_strings("/", "part_datasets");
  if (in.has_attribute("/", "part_summed")) s.summed = in.read_attribute_strings("/", "part_summed");
  if (in.has_attribute("/", "fingerprint_text"))
    s.fingerprint_text = in.read_attribute_string("/", "fingerprint_text");
  return s;
}

std::string verify_output(const std::string& path, const PartStamp& want, const Shapes& shapes) {
  io::InputFile in(MPI_COMM_SELF, path);
  const PartStamp got = read_stamp(in);
  if (!got.complete) return "it has no 'complete' attribute";
  if (got.fingerprint_text != want.fingerprint_text)
    return "different input or options: " + first_difference(got.fingerprint_text, want.fingerprint_text);
  if (got.part != want.part || got.rows != want.rows || got.total_rows != want.total_rows)
    return "it is part " + part_name(got.part) + " of " + std::to_string(got.total_rows) +
           " rows, this job is part " + part_name(want.part) + " of " + std::to_string(want.total_rows);
  if (got.datasets != want.datasets) return "it holds other datasets";
  for (const auto& [name, dims] : shapes) {
    if (!in.has(name)) return "no dataset " + name;
    if (in.describe(name).dims != dims) return name + " has the wrong shape";
  }
  return "";
}

bool skip_complete_output(MPI_Comm comm, const std::string& path, bool resume, bool force,
                          const PartStamp& want, const Shapes& shapes) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string verdict = "run";
  if (rank == 0 && resume) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(path, ec))) {
      std::string why;
      try {
        why = verify_output(path, want, shapes);
      } catch (const std::exception& e) {
        why = e.what();
      }
      if (why.empty()) verdict = "skip";
      else if (!force)
        verdict = "!" + path + " exists but is not a complete output of this job (" + why +
                  "); --force replaces it";
    }
  }
  verdict = broadcast_from_root(comm, verdict);
  if (verdict.front() == '!') throw UsageError(verdict.substr(1));
  if (verdict != "skip") return false;
  if (rank == 0)  // even with --quiet: it says why nothing was done
    std::fprintf(stderr, "tessera: %s is complete (part %s, rows %lld:%lld, same input and options): skipped\n",
                 path.c_str(), part_name(want.part).c_str(), (long long)want.rows.begin,
                 (long long)want.rows.end);
  return true;
}

std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return "size=" + std::to_string(st.st_size) + " mtime_ns=" +
         std::to_string(std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
}

}  // namespace tessera::cli

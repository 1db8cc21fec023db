// `tessera import FORMAT INPUT... -o OUT.h5`: lab files turned into the layout
// tessera fit reads (/data [n_sweep, ny, nx], or /sig and /ref, and /sweep).
// Formats: qdmlab (QDMlab run files, io/qdmlab.hpp), qdmpy (the Melbourne
// group's binary spools), tiff (multi-page stacks, io/tiff_stack.hpp), npy
// (NumPy arrays, io/npy.hpp); and tiles, EM tiles (TIFF or MRC, io/mrc.hpp)
// and a list of pairs into the layout tessera xcorr reads (/images,
// /templates, /pairs).
// Rank 0 does the work (the conversion is one stream of reads and writes);
// every rank agrees on the outcome, so bad input ends every rank with one line
// and status 2, and no output is left behind (io::OutputFile writes
// NAME.partial and renames it when complete).
//
// Storage: /data is chunked by whole sweeps of whole rows, [n_sweep, r, nx]
// with r rows to about 1 MiB a chunk: tessera fit reads slabs of rows of every
// sweep point, so a chunk is never read in part nor twice. Integer data
// (camera counts) are stored byte-shuffled and deflated (gzip 1: about half
// the size, decompressed faster than a disk reads); floating-point data are
// stored as they are (noise compresses little and decompressing would slow
// every fit of the file).
#include <glob.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command.hpp"
#include "io/error.hpp"
#include "io/h5_output.hpp"
#include "io/mrc.hpp"
#include "io/npy.hpp"
#include "io/qdmlab.hpp"
#include "io/qdmpy.hpp"
#include "io/tiff_stack.hpp"
#include "mpi/collectives.hpp"
#include "mpi/decomposition.hpp"
#include "progress.hpp"

namespace tessera::cli {

namespace {

namespace fs = std::filesystem;

struct ImportRequest {
  std::string format, output, sweep_file, sweep_range, layout = "sxy", memory_budget = "512M";
  std::vector<std::string> inputs;
  std::vector<std::string> images, templates, image_masks, template_masks;  // tiles
  std::string pairs;
  bool force = false, quiet = false, float32 = false;
  std::string command_line;
};

// A cube to write: its sizes, its type in the output, its sweep, what the
// output records of its source, and the reader of a block of rows.
struct CubeSource {
  std::vector<std::string> datasets = {"/data"};  // or /sig and /ref
  std::int64_t n = 0, rows = 0, cols = 0;
  io::DType type = io::DType::Float32;
  std::vector<double> sweep;
  std::string sweep_unit;
  std::vector<std::pair<std::string, std::string>> text;
  std::vector<std::pair<std::string, double>> numbers;
  // Rows [r0, r1) of every point of every dataset as double,
  // [datasets][n][r1 - r0][cols].
  std::function<void(std::int64_t, std::int64_t, std::vector<double>&)> read_rows;
};

std::size_t type_size(io::DType t) {
  switch (t) {
    case io::DType::UInt8: return 1;
    case io::DType::UInt16: return 2;
    case io::DType::UInt32:
    case io::DType::Int32:
    case io::DType::Float32: return 4;
    default: return 8;
  }
}

bool is_integer(io::DType t) { return t != io::DType::Float32 && t != io::DType::Float64; }

// --sweep-file FILE (.npy, or text: one value a line) or --sweep START:STOP:N.
std::vector<double> sweep_from_options(const ImportRequest& r) {
  if (!r.sweep_file.empty() && !r.sweep_range.empty()) throw UsageError("--sweep-file and --sweep: give one");
  if (!r.sweep_range.empty()) {
    double a = 0, b = 0;
    long long n = 0;
    char tail;
    if (std::sscanf(r.sweep_range.c_str(), "%lf:%lf:%lld%c", &a, &b, &n, &tail) != 3 || n < 1 || !std::isfinite(a) ||
        !std::isfinite(b))
      throw UsageError("--sweep must look like START:STOP:N (N values from START to STOP), got '" + r.sweep_range + "'");
    std::vector<double> v(static_cast<std::size_t>(n));
    for (long long i = 0; i < n; ++i) v[std::size_t(i)] = n == 1 ? a : a + (b - a) * double(i) / double(n - 1);
    return v;
  }
  if (r.sweep_file.empty()) throw UsageError("import " + r.format + ": give the sweep (--sweep-file FILE or --sweep START:STOP:N)");
  if (fs::path(r.sweep_file).extension() == ".npy") return io::read_npy_vector(r.sweep_file);
  std::ifstream f(r.sweep_file);
  if (!f) throw UsageError(r.sweep_file + ": cannot open the sweep file");
  std::vector<double> v;
  std::string line;
  for (int k = 1; std::getline(f, line); ++k) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    std::istringstream in(line);
    double x;
    std::string rest;
    if (!(in >> x) || (in >> rest) || !std::isfinite(x))
      throw UsageError(r.sweep_file + ": line " + std::to_string(k) + " is not one finite number: '" + line + "'");
    v.push_back(x);
  }
  return v;
}

CubeSource qdmlab_source(const std::string& path, const ImportRequest& r) {
  if (!r.sweep_file.empty() || !r.sweep_range.empty())
    throw UsageError("import qdmlab: the run file carries its sweep (freqList); --sweep-file and --sweep do not apply");
  auto run = std::make_shared<io::QdmlabRun>(path);
  CubeSource s;
  s.n = run->n_low + run->n_high;
  s.rows = run->rows;
  s.cols = run->cols;
  s.type = r.float32 ? io::DType::Float32 : io::DType::Float64;
  s.sweep = run->sweep_mhz;
  s.sweep_unit = "MHz";
  s.numbers = {{"n_low", double(run->n_low)}, {"n_high", double(run->n_high)}, {"imgNumRows", double(run->rows)},
               {"imgNumCols", double(run->cols)}, {"numFreqs", run->num_freqs}, {"stacks", double(run->stacks)}};
  s.text = {{"sweep_source", "freqList (Hz) / 1e6"},
            {"windows", "points 0:" + std::to_string(run->n_low) + " the low resonance, " +
                            std::to_string(run->n_low) + ":" + std::to_string(s.n) + " the high one"}};
  s.read_rows = [run](std::int64_t r0, std::int64_t r1, std::vector<double>& out) { run->read_rows(r0, r1, out); };
  return s;
}

CubeSource npy_source(const std::string& path, const ImportRequest& r) {
  if (r.layout != "sxy" && r.layout != "yxs")
    throw UsageError("--layout must be sxy ([n_sweep, ny, nx]) or yxs ([ny, nx, n_sweep]), got '" + r.layout + "'");
  auto a = std::make_shared<io::NpyArray>(io::read_npy_header(path));
  if (a->shape.size() != 3)
    throw io::Error(path + ": holds " + std::to_string(a->shape.size()) + " dimensions, expected 3 (" +
                    (r.layout == "sxy" ? "[n_sweep, ny, nx]" : "[ny, nx, n_sweep]") + ")");
  if (a->elements() == 0) throw io::Error(path + ": the array is empty");
  CubeSource s;
  const bool sxy = r.layout == "sxy";
  s.n = sxy ? a->shape[0] : a->shape[2];
  s.rows = sxy ? a->shape[1] : a->shape[0];
  s.cols = sxy ? a->shape[2] : a->shape[1];
  const std::string d = a->descr.substr(1);
  if (d == "f4") s.type = io::DType::Float32;
  else if (d == "f8") s.type = r.float32 ? io::DType::Float32 : io::DType::Float64;
  else if (d == "u1" || d == "b1") s.type = io::DType::UInt8;
  else if (d == "u2") s.type = io::DType::UInt16;
  else if (d == "u4") s.type = io::DType::UInt32;
  else if (d == "i1" || d == "i2" || d == "i4") s.type = io::DType::Int32;
  else if (d == "i8") s.type = io::DType::Int64;
  else throw io::Error(path + ": dtype " + a->descr + ": convert it to float64, float32 or a narrower integer first");
  s.sweep = sweep_from_options(r);
  s.text = {{"npy_dtype", a->descr}, {"npy_layout", r.layout}, {"npy_fortran_order", a->fortran_order ? "True" : "False"}};
  const std::vector<std::int64_t> st = a->strides();
  const std::int64_t ss = sxy ? st[0] : st[2], sy = sxy ? st[1] : st[0], sx = sxy ? st[2] : st[1];
  auto map = std::make_shared<io::NpyMapping>(*a);
  const std::int64_t n = s.n, cols = s.cols;
  s.read_rows = [a, map, ss, sy, sx, n, cols](std::int64_t r0, std::int64_t r1, std::vector<double>& out) {
    const std::int64_t rows = r1 - r0;
    out.resize(static_cast<std::size_t>(n * rows * cols));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t y = 0; y < rows; ++y)
        for (std::int64_t x = 0; x < cols; ++x)
          out[std::size_t((i * rows + y) * cols + x)] = map->value(i * ss + (r0 + y) * sy + x * sx);
  };
  return s;
}

// qdmpy's spools (io/qdmpy.hpp): the image as qdmpy shows it, /sig and /ref
// when the frames alternate.
CubeSource qdmpy_source(const std::string& path, const ImportRequest& r) {
  if (!r.sweep_file.empty() || !r.sweep_range.empty())
    throw UsageError("import qdmpy: the sweep is the first line of the _metaSpool.txt file; --sweep-file and "
                     "--sweep do not apply");
  auto spool = std::make_shared<io::QdmpySpool>(path);
  CubeSource s;
  if (spool->sigref) s.datasets = {"/sig", "/ref"};
  s.n = std::int64_t(spool->sweep.size());
  s.rows = spool->rows();
  s.cols = spool->cols();
  s.type = io::DType::Float32;
  s.sweep = spool->sweep;
  for (const auto& [k, v] : spool->metadata) s.text.emplace_back("meta " + k, v);
  s.text.emplace_back("orientation", "as qdmpy shows it: row y, column x = spool frame [x][y]");
  s.numbers = {{"AOIHeight", double(spool->aoi_height)}, {"AOIWidth", double(spool->aoi_width)}};
  s.read_rows = [spool](std::int64_t r0, std::int64_t r1, std::vector<double>& out) { spool->read_rows(r0, r1, out); };
  return s;
}

CubeSource tiff_source(const std::string& path, const ImportRequest& r) {
  auto t = std::make_shared<io::TiffStack>(path);
  CubeSource s;
  s.n = t->pages;
  s.rows = t->rows;
  s.cols = t->cols;
  if (t->kind == 'f') s.type = t->bits == 32 || r.float32 ? io::DType::Float32 : io::DType::Float64;
  else if (t->kind == 'i') s.type = io::DType::Int32;
  else s.type = t->bits == 8 ? io::DType::UInt8 : t->bits == 16 ? io::DType::UInt16 : io::DType::UInt32;
  s.sweep = sweep_from_options(r);
  s.text = {{"tiff_sample", std::string(t->kind == 'f' ? "float" : t->kind == 'i' ? "int" : "uint") +
                                std::to_string(t->bits)}};
  const std::int64_t n = s.n;
  s.read_rows = [t, n](std::int64_t r0, std::int64_t r1, std::vector<double>& out) { t->read(0, n, r0, r1, out); };
  return s;
}

template <class T>
void write_block(io::OutputFile& out, const std::string& name, std::int64_t y0, std::int64_t y1, const double* v,
                 std::size_t count) {
  std::vector<T> t(count);
  for (std::size_t k = 0; k < count; ++k) t[k] = static_cast<T>(v[k]);
  out.write_slab<T>(name, y0, y1, std::span<const T>(t));
}

void write_cube(const CubeSource& s, const std::string& input, const std::string& output, const ImportRequest& r) {
  if (std::int64_t(s.sweep.size()) != s.n)
    throw UsageError(input + ": " + std::to_string(s.n) + " sweep points in the data, " +
                     std::to_string(s.sweep.size()) + " sweep values given");
  for (const double x : s.sweep)
    if (!std::isfinite(x)) throw UsageError(input + ": the sweep holds a non-finite value");
  const std::uint64_t budget = mpi::parse_size(r.memory_budget);
  const std::uint64_t row_bytes =
      std::uint64_t(s.n * s.cols) * s.datasets.size() * (sizeof(double) * 2 + type_size(s.type));
  const std::uint64_t plane_row = std::uint64_t(s.n * s.cols) * type_size(s.type);
  const std::int64_t chunk_rows =
      std::clamp<std::int64_t>(std::int64_t((1u << 20) / std::max<std::uint64_t>(plane_row, 1)), 1, s.rows);
  // Whole chunks per block, so that no chunk is written twice (a deflated one
  // would be read back and decompressed to be completed).
  const std::int64_t fit_rows = std::int64_t(budget / std::max<std::uint64_t>(row_bytes, 1));
  const std::int64_t block = std::clamp<std::int64_t>(fit_rows / chunk_rows * chunk_rows, chunk_rows, s.rows);

  io::OutputFile out(MPI_COMM_SELF, output, r.force);
  io::Storage storage{{std::uint64_t(s.n), std::uint64_t(chunk_rows), std::uint64_t(s.cols)}, is_integer(s.type) ? 1 : 0};
  for (const auto& name : s.datasets)
    out.create_dataset(name, s.type, {std::uint64_t(s.n), std::uint64_t(s.rows), std::uint64_t(s.cols)}, storage);
  out.create_dataset("/sweep", io::DType::Float64, {std::uint64_t(s.n)});
  out.write_all<double>("/sweep", s.sweep);
  Progress progress(MPI_COMM_SELF, s.rows * s.cols, r.quiet, "import");
  std::vector<double> v;
  for (std::int64_t y0 = 0; y0 < s.rows; y0 += block) {
    const std::int64_t y1 = std::min(s.rows, y0 + block);
    s.read_rows(y0, y1, v);
    const std::size_t count = std::size_t(s.n * (y1 - y0) * s.cols);
    for (std::size_t d = 0; d < s.datasets.size(); ++d) {
      const std::string& name = s.datasets[d];
      const double* part = v.data() + d * count;
      switch (s.type) {
        case io::DType::UInt8: write_block<std::uint8_t>(out, name, y0, y1, part, count); break;
        case io::DType::UInt16: write_block<std::uint16_t>(out, name, y0, y1, part, count); break;
        case io::DType::UInt32: write_block<std::uint32_t>(out, name, y0, y1, part, count); break;
        case io::DType::Int32: write_block<std::int32_t>(out, name, y0, y1, part, count); break;
        case io::DType::Int64: write_block<std::int64_t>(out, name, y0, y1, part, count); break;
        case io::DType::Float32: write_block<float>(out, name, y0, y1, part, count); break;
        case io::DType::Float64: write_block<double>(out, name, y0, y1, part, count); break;
      }
    }
    progress.add((y1 - y0) * s.cols);
  }
  progress.finish();
  out.write_attribute("/", "source_format", r.format);
  out.write_attribute("/", "source_files", std::vector<std::string>{fs::absolute(input).string()});
  out.write_attribute("/", "command_line", r.command_line);
  out.write_attribute("/", "version", version_line());
  if (!s.sweep_unit.empty()) out.write_attribute("/sweep", "unit", s.sweep_unit);
  for (const auto& [k, v2] : s.text) out.write_attribute("/", k, v2);
  for (const auto& [k, v2] : s.numbers) out.write_attribute("/", k, v2);
  out.write_attribute("/", "chunk_rows", std::int64_t(chunk_rows));
  out.commit();
  if (!r.quiet)
    std::fprintf(stderr, "tessera: wrote %s: %s %lld x %lld x %lld (%s), /sweep\n", output.c_str(),
                 s.datasets.size() == 1 ? "/data" : "/sig and /ref", (long long)s.n, (long long)s.rows,
                 (long long)s.cols, input.c_str());
}

// ---- tiles ------------------------------------------------------------------------

// The frames of one TIFF or MRC file (one image, or a stack of them).
struct FrameFile {
  std::string path;
  std::int64_t count = 0, rows = 0, cols = 0;
  bool exact_in_float = true;  // float32 holds every value
  std::function<void(std::int64_t, std::vector<double>&)> read;  // frame k
};

FrameFile frame_file(const std::string& path) {
  FrameFile f;
  f.path = path;
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".mrc" || ext == ".mrcs" || ext == ".MRC" || ext == ".map" || ext == ".st") {
    auto m = std::make_shared<io::MrcFile>(io::read_mrc_header(path));
    f.count = m->nz, f.rows = m->ny, f.cols = m->nx;
    f.read = [m](std::int64_t k, std::vector<double>& out) { io::read_mrc_sections(*m, k, k + 1, out); };
    return f;
  }
  auto t = std::make_shared<io::TiffStack>(path);
  f.count = t->pages, f.rows = t->rows, f.cols = t->cols;
  f.exact_in_float = t->bits <= 16 || (t->kind == 'f' && t->bits == 32);
  f.read = [t](std::int64_t k, std::vector<double>& out) { t->read(k, k + 1, 0, t->rows, out); };
  return f;
}

// Arguments as given, and those with * ? [ expanded (sorted; none found is an error).
std::vector<std::string> expand(const std::vector<std::string>& args, const char* what) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    if (a.find_first_of("*?[") == std::string::npos) {
      out.push_back(a);
      continue;
    }
    glob_t g{};
    const int rc = ::glob(a.c_str(), 0, nullptr, &g);
    std::vector<std::string> found(g.gl_pathv, g.gl_pathv + (rc == 0 ? g.gl_pathc : 0));
    globfree(&g);
    if (found.empty()) throw UsageError(std::string(what) + " " + a + ": no file matches");
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

struct FrameSet {
  std::vector<FrameFile> files;
  std::int64_t count = 0, rows = 0, cols = 0;
};

FrameSet frame_set(const std::vector<std::string>& args, const char* what, bool float32) {
  FrameSet s;
  for (const auto& p : expand(args, what)) {
    if (!fs::exists(p)) throw UsageError(std::string(what) + " " + p + ": no such file");
    FrameFile f = frame_file(p);
    if (!f.exact_in_float && !float32)
      throw UsageError(p + ": 32-bit integer or 64-bit float values do not all fit float32 (use --float32 to store them so)");
    if (s.files.empty()) s.rows = f.rows, s.cols = f.cols;
    else if (f.rows != s.rows || f.cols != s.cols)
      throw UsageError(std::string(what) + ": " + p + " is " + std::to_string(f.rows) + " x " + std::to_string(f.cols) +
                       ", " + s.files.front().path + " " + std::to_string(s.rows) + " x " + std::to_string(s.cols) +
                       ": every one must have the same shape");
    s.count += f.count;
    s.files.push_back(std::move(f));
  }
  return s;
}

// Two integer columns (image, template), comma or blank separated; a first
// line that is not two integers is a header; # starts a comment.
std::vector<std::int64_t> read_pairs(const std::string& path, std::int64_t images, std::int64_t templates) {
  std::ifstream f(path);
  if (!f) throw UsageError(path + ": cannot open the pair list");
  std::vector<std::int64_t> v;
  std::string line;
  for (int k = 1; std::getline(f, line); ++k) {
    std::replace(line.begin(), line.end(), ',', ' ');
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    std::istringstream in(line);
    long long a, b;
    std::string rest;
    if (!(in >> a >> b) || (in >> rest)) {
      if (k == 1 && v.empty()) continue;  // a header line
      throw UsageError(path + ": line " + std::to_string(k) + " is not two integers (image, template): '" + line + "'");
    }
    if (a < 0 || a >= images || b < 0 || b >= templates)
      throw UsageError(path + ": line " + std::to_string(k) + ": pair (" + std::to_string(a) + ", " + std::to_string(b) +
                       ") is out of range (" + std::to_string(images) + " images, " + std::to_string(templates) +
                       " templates)");
    v.push_back(a);
    v.push_back(b);
  }
  if (v.empty()) throw UsageError(path + ": no pairs");
  return v;
}

void write_frames(io::OutputFile& out, const std::string& name, const FrameSet& s, bool mask, Progress& progress) {
  out.create_dataset(name, mask ? io::DType::UInt8 : io::DType::Float32,
                     {std::uint64_t(s.count), std::uint64_t(s.rows), std::uint64_t(s.cols)},
                     io::Storage{{1, std::uint64_t(s.rows), std::uint64_t(s.cols)}, mask ? 1 : 0});
  std::vector<double> v;
  std::int64_t k = 0;
  for (const FrameFile& f : s.files)
    for (std::int64_t j = 0; j < f.count; ++j, ++k) {
      f.read(j, v);
      if (mask) {
        std::vector<std::uint8_t> m(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) m[i] = v[i] != 0;
        out.write_rows<std::uint8_t>(name, k, k + 1, m);
      } else {
        for (const double x : v)
          if (!std::isfinite(x)) throw UsageError(f.path + ": frame " + std::to_string(j) + " holds a non-finite value");
        std::vector<float> t(v.begin(), v.end());
        out.write_rows<float>(name, k, k + 1, t);
      }
      progress.add(1);
    }
}

std::vector<std::string> paths_of(const FrameSet& s) {
  std::vector<std::string> p;
  for (const auto& f : s.files) p.push_back(fs::absolute(f.path).string());
  return p;
}

void import_tiles(const ImportRequest& r) {
  if (!r.inputs.empty()) throw UsageError("import tiles: the files go after --images and --templates, not as inputs");
  if (r.images.empty() || r.templates.empty() || r.pairs.empty())
    throw UsageError("import tiles: --images, --templates and --pairs are required");
  if (fs::is_directory(r.output)) throw UsageError("import tiles: -o must be a file");
  if (fs::exists(r.output) && !r.force) throw UsageError(r.output + " exists (use --force to overwrite it)");
  const FrameSet images = frame_set(r.images, "--images", r.float32);
  const FrameSet templates = frame_set(r.templates, "--templates", r.float32);
  if (templates.rows > images.rows || templates.cols > images.cols)
    throw UsageError("import tiles: the templates (" + std::to_string(templates.rows) + " x " +
                     std::to_string(templates.cols) + ") are larger than the images (" + std::to_string(images.rows) +
                     " x " + std::to_string(images.cols) + ")");
  FrameSet image_masks, template_masks;
  auto masks = [&](const std::vector<std::string>& args, const char* what, const FrameSet& like) {
    FrameSet m = frame_set(args, what, true);
    if (m.count != like.count || m.rows != like.rows || m.cols != like.cols)
      throw UsageError(std::string(what) + ": " + std::to_string(m.count) + " masks of " + std::to_string(m.rows) +
                       " x " + std::to_string(m.cols) + " for " + std::to_string(like.count) + " frames of " +
                       std::to_string(like.rows) + " x " + std::to_string(like.cols));
    return m;
  };
  if (!r.image_masks.empty()) image_masks = masks(r.image_masks, "--image-masks", images);
  if (!r.template_masks.empty()) template_masks = masks(r.template_masks, "--template-masks", templates);
  const std::vector<std::int64_t> pairs = read_pairs(r.pairs, images.count, templates.count);

  io::OutputFile out(MPI_COMM_SELF, r.output, r.force);
  Progress progress(MPI_COMM_SELF, images.count + templates.count + image_masks.count + template_masks.count, r.quiet,
                    "import", "frames");
  write_frames(out, "/images", images, false, progress);
  write_frames(out, "/templates", templates, false, progress);
  if (image_masks.count) write_frames(out, "/image_masks", image_masks, true, progress);
  if (template_masks.count) write_frames(out, "/template_masks", template_masks, true, progress);
  out.create_dataset("/pairs", io::DType::Int64, {std::uint64_t(pairs.size() / 2), 2});
  out.write_all<std::int64_t>("/pairs", pairs);
  progress.finish();
  out.write_attribute("/", "source_format", std::string("tiles"));
  out.write_attribute("/", "source_images", paths_of(images));
  out.write_attribute("/", "source_templates", paths_of(templates));
  if (image_masks.count) out.write_attribute("/", "source_image_masks", paths_of(image_masks));
  if (template_masks.count) out.write_attribute("/", "source_template_masks", paths_of(template_masks));
  out.write_attribute("/", "source_pairs", fs::absolute(r.pairs).string());
  out.write_attribute("/", "command_line", r.command_line);
  out.write_attribute("/", "version", version_line());
  out.commit();
  if (!r.quiet)
    std::fprintf(stderr, "tessera: wrote %s: /images %lld x %lld x %lld, /templates %lld x %lld x %lld, /pairs %zu\n",
                 r.output.c_str(), (long long)images.count, (long long)images.rows, (long long)images.cols,
                 (long long)templates.count, (long long)templates.rows, (long long)templates.cols, pairs.size() / 2);
}

// Rank 0's whole import: the sources opened and checked first, then written.
void import_all(const ImportRequest& r) {
  if (r.format == "tiles") return import_tiles(r);
  if (r.format != "qdmlab" && r.format != "qdmpy" && r.format != "tiff" && r.format != "npy")
    throw UsageError("import: unknown format '" + r.format + "' (known: qdmlab, qdmpy, tiff, npy, tiles)");
  if (r.inputs.empty()) throw UsageError("import " + r.format + ": no input file");
  if (!r.images.empty() || !r.templates.empty() || !r.pairs.empty())
    throw UsageError("import " + r.format + ": --images, --templates and --pairs are for tiles");
  std::vector<std::string> outputs;
  if (r.inputs.size() == 1 && !fs::is_directory(r.output)) {
    outputs.push_back(r.output);
  } else {
    if (!fs::is_directory(r.output))
      throw UsageError("import: with " + std::to_string(r.inputs.size()) +
                       " inputs, -o must be an existing folder (one output each, named after its input)");
    for (const auto& in : r.inputs) outputs.push_back((fs::path(r.output) / fs::path(in).stem()).string() + ".h5");
    for (std::size_t i = 0; i < outputs.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (outputs[i] == outputs[j]) throw UsageError("import: two inputs would both write " + outputs[i]);
  }
  for (const auto& o : outputs)
    if (fs::exists(o) && !r.force) throw UsageError(o + " exists (use --force to overwrite it)");
  std::vector<CubeSource> sources;
  for (const auto& in : r.inputs) {
    if (!fs::exists(in)) throw UsageError(in + ": no such file");
    sources.push_back(r.format == "qdmlab"  ? qdmlab_source(in, r)
                      : r.format == "qdmpy" ? qdmpy_source(in, r)
                      : r.format == "tiff"  ? tiff_source(in, r)
                                            : npy_source(in, r));
  }
  for (std::size_t i = 0; i < sources.size(); ++i) write_cube(sources[i], r.inputs[i], outputs[i], r);
}

int run_import(const ImportRequest& r, const RunContext& ctx) {
  // "2" + message: bad input; "1" + message: any other failure.
  std::string error;
  if (ctx.is_root()) {
    try {
      (void)mpi::parse_size(r.memory_budget);
      import_all(r);
    } catch (const UsageError& e) {
      error = std::string("2") + e.what();
    } catch (const io::Error& e) {
      error = std::string("2") + e.what();
    } catch (const std::invalid_argument& e) {
      error = std::string("2") + e.what();
    } catch (const std::exception& e) {
      error = std::string("1") + e.what();
    }
  }
  error = mpi::agree_error(MPI_COMM_WORLD, error);
  if (error.empty()) return 0;
  if (error[0] == '2') throw UsageError(error.substr(1));
  throw std::runtime_error(error.substr(1));
}

}  // namespace

Command add_import_command(CLI::App& app) {
  auto req = std::make_shared<ImportRequest>();
  CLI::App* c = app.add_subcommand(
      "import", "Turn lab files into the HDF5 layout tessera fit reads (/data [n_sweep, ny, nx], /sweep): "
                "qdmlab RUN.mat... (QDMlab run files, MATLAB v7.3), qdmpy SPOOL (with SPOOL_metaSpool.txt), "
                "tiff STACK.tif and npy CUBE.npy (with --sweep-file or --sweep); tiles --images ... --templates ... "
                "--pairs PAIRS.csv for tessera xcorr");
  c->add_option("format", req->format, "qdmlab, qdmpy, tiff, npy or tiles")->required();
  c->add_option("inputs", req->inputs, "Input files (several: -o is a folder); none for tiles");
  c->add_option("--images", req->images, "tiles: the images, TIFF or MRC files (each one image or a stack), or globs");
  c->add_option("--templates", req->templates, "tiles: the templates, as --images");
  c->add_option("--pairs", req->pairs,
                "tiles: the pairs, a CSV or text file of two integer columns (image, template; 0-based, in the "
                "order of --images and --templates); a header line is allowed");
  c->add_option("--image-masks", req->image_masks, "tiles: masks of the images (nonzero = valid), as --images");
  c->add_option("--template-masks", req->template_masks, "tiles: masks of the templates, as --images");
  c->add_option("-o,--output", req->output,
                "Output HDF5 file (written as NAME.partial, renamed when complete), or a folder for several inputs")
      ->required();
  c->add_option("--sweep-file", req->sweep_file,
                "tiff, npy: the sweep values, a .npy array or a text file (one value a line)");
  c->add_option("--sweep", req->sweep_range, "tiff, npy: the sweep as START:STOP:N (N values from START to STOP)");
  c->add_option("--layout", req->layout, "npy: sxy for [n_sweep, ny, nx] (default), yxs for [ny, nx, n_sweep]")
      ->capture_default_str();
  c->add_flag("--float32", req->float32, "Store double data as float32 (default: as they are)");
  c->add_option("--memory-budget", req->memory_budget, "Memory for the rows converted at a time (e.g. 512M, 4G)")
      ->capture_default_str();
  c->add_flag("--force", req->force, "Overwrite existing outputs");
  c->add_flag("--quiet", req->quiet, "No progress report and no line on success");
  return {c, [req](const RunContext& ctx) {
            ImportRequest r = *req;
            r.command_line = ctx.command_line;
            return run_import(r, ctx);
          }};
}

}  // namespace tessera::cli

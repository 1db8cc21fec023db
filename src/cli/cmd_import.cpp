// `tessera import FORMAT INPUT... -o OUT.h5`: lab files turned into the layout
// tessera fit reads (/data [n_sweep, ny, nx], or /sig and /ref, and /sweep).
// Formats so far: qdmlab (QDMlab run files, io/qdmlab.hpp), qdmpy (the
// Melbourne group's binary spools), tiff (multi-page stacks, io/tiff_stack.hpp)
// and npy (NumPy arrays, io/npy.hpp).
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
#include "io/npy.hpp"
#include "io/qdmlab.hpp"
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

// The Melbourne group's spool (read as qdmpy reads it): float32 values after
// two int32 (LabVIEW's array header), frames [AOIHeight][AOIWidth], and beside
// it FILE_metaSpool.txt: the sweep on its first line (tab-separated), then
// "key: value" lines. Twice as many frames as sweep values: signal and
// reference frames alternate (signal first). qdmpy shows a frame transposed,
// [AOIWidth rows][AOIHeight columns] (LabVIEW swaps the two names); so does
// the output.
CubeSource qdmpy_source(const std::string& path, const ImportRequest& r) {
  if (!r.sweep_file.empty() || !r.sweep_range.empty())
    throw UsageError("import qdmpy: the sweep is the first line of the _metaSpool.txt file; --sweep-file and --sweep do not apply");
  const std::string meta_path = path + "_metaSpool.txt";
  std::ifstream meta(meta_path);
  if (!meta) throw io::Error(path + ": no metadata file " + meta_path + " beside it");
  std::string line;
  std::getline(meta, line);
  std::vector<double> sweep;
  {
    std::istringstream in(line);
    std::string field;
    while (std::getline(in, field, '\t')) {
      if (field.find_first_not_of(" \r") == std::string::npos) continue;
      try {
        std::size_t used = 0;
        sweep.push_back(std::stod(field, &used));
      } catch (const std::exception&) {
        throw io::Error(meta_path + ": the first line must be the tab-separated sweep; '" + field + "' is not a number");
      }
    }
  }
  if (sweep.empty()) throw io::Error(meta_path + ": the first line (the sweep) is empty");
  CubeSource s;
  std::int64_t height = -1, width = -1;
  while (std::getline(meta, line)) {
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    const auto tab = key.rfind('\t');
    if (tab != std::string::npos) key = key.substr(tab + 1);
    s.text.emplace_back("meta " + key, value);
    auto whole = [&](std::int64_t& out) {
      try {
        out = std::stoll(value);
      } catch (const std::exception&) {
        throw io::Error(meta_path + ": " + key + " is '" + value + "', expected a whole number");
      }
    };
    if (key == "AOIHeight") whole(height);
    if (key == "AOIWidth") whole(width);
  }
  if (height < 1 || width < 1) throw io::Error(meta_path + ": no AOIHeight and AOIWidth lines (key: value)");
  io::NpyArray a;
  a.path = path;
  a.descr = "<f4";
  a.data_offset = 8;
  const std::uint64_t bytes = fs::file_size(path);
  if (bytes < 8 || (bytes - 8) % 4 != 0) throw io::Error(path + ": not a spool of float32 values after an 8-byte header");
  const std::int64_t values = std::int64_t((bytes - 8) / 4), frame = height * width;
  const std::int64_t frames = values / frame, n = std::int64_t(sweep.size());
  if (values % frame != 0 || (frames != n && frames != 2 * n))
    throw io::Error(path + ": " + std::to_string(values) + " values are not " + std::to_string(n) + " or " +
                    std::to_string(2 * n) + " frames of AOIHeight x AOIWidth = " + std::to_string(height) + " x " +
                    std::to_string(width) + " (" + std::to_string(n) + " sweep values in " + meta_path + ")");
  a.shape = {frames, height, width};
  const bool sigref = frames == 2 * n;
  if (sigref) s.datasets = {"/sig", "/ref"};
  s.n = n;
  s.rows = width;  // qdmpy's transposed view
  s.cols = height;
  s.type = io::DType::Float32;
  s.sweep = sweep;
  s.numbers = {{"AOIHeight", double(height)}, {"AOIWidth", double(width)}};
  s.text.emplace_back("orientation", "as qdmpy shows it: row y, column x = spool frame [x][y]");
  auto arr = std::make_shared<io::NpyArray>(a);
  auto map = std::make_shared<io::NpyMapping>(*arr);
  s.read_rows = [arr, map, n, height, width, sigref](std::int64_t r0, std::int64_t r1, std::vector<double>& out) {
    const std::int64_t rows = r1 - r0, sets = sigref ? 2 : 1;
    out.resize(static_cast<std::size_t>(sets * n * rows * height));
    for (std::int64_t d = 0; d < sets; ++d)
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t f = sigref ? 2 * i + d : i;
        for (std::int64_t y = 0; y < rows; ++y)
          for (std::int64_t x = 0; x < height; ++x)
            out[std::size_t(((d * n + i) * rows + y) * height + x)] = map->value((f * height + x) * width + r0 + y);
      }
  };
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
  const std::int64_t block = std::clamp<std::int64_t>(std::int64_t(budget / std::max<std::uint64_t>(row_bytes, 1)), 1, s.rows);
  const std::uint64_t plane_row = std::uint64_t(s.n * s.cols) * type_size(s.type);
  const std::int64_t chunk_rows = std::clamp<std::int64_t>(std::int64_t((1u << 20) / std::max<std::uint64_t>(plane_row, 1)), 1, s.rows);

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

// Rank 0's whole import: the sources opened and checked first, then written.
void import_all(const ImportRequest& r) {
  if (r.format != "qdmlab" && r.format != "qdmpy" && r.format != "tiff" && r.format != "npy")
    throw UsageError("import: unknown format '" + r.format + "' (known: qdmlab, qdmpy, tiff, npy)");
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
                "tiff STACK.tif and npy CUBE.npy (with --sweep-file or --sweep)");
  c->add_option("format", req->format, "qdmlab, qdmpy, tiff or npy")->required();
  c->add_option("inputs", req->inputs, "Input files (several QDMlab runs: -o is a folder)")->required();
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

// `tessera fit` as a sequence of named steps: check the options, open the
// input, plan the part and the chunks, compute the automatic start from the
// mean spectrum, fit chunk by chunk through the library (api::CubeFitter),
// write each chunk's rows, then the attributes.
#include "fit_job.hpp"

#include <mpi.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>

#include "api/fit.hpp"
#include "backend.hpp"
#include "fit/cube.hpp"
#include "fit/guess.hpp"
#include "fit/user_model.hpp"
#include "io/error.hpp"
#include "io/h5_input.hpp"
#include "io/h5_output.hpp"
#include "mpi/collectives.hpp"
#include "mpi/decomposition.hpp"
#include "mpi/session.hpp"
#include "part_file.hpp"
#include "progress.hpp"

namespace tessera::cli {

namespace {

// Memory per output row of a chunk, for --memory-budget: the input floats as
// read (data, and ref with sig/ref) and their binned spectra (one more copy of
// the input at bin 1), then per output pixel its spectrum again (the chunk's
// y) and three float arrays of n_params (start, parameters, sigma).
constexpr std::uint64_t kInputCopies = 2;       // read + binned
constexpr std::uint64_t kInputCopiesSigRef = 3;  // sig, ref + binned
constexpr std::uint64_t kParamArrays = 3;        // start, params, sigma

// What the run needs to know about its input file.
struct FitInputInfo {
  io::DatasetInfo cube;
  std::string cube_name;  // the dataset fitted: --data, or --sig with --ref
  std::vector<double> sweep;
  std::string x_unit, y_unit;
  fit::CubeGeometry geometry;
  bool contiguous = true;  // the cube (and the reference) stored without chunks: read_spectra
};

// NAME=VALUE and NAME=LO:HI items of --fix and --bound.
std::pair<std::string, std::string> split_item(const std::string& item, const std::string& opt) {
  const auto eq = item.find('=');
  if (eq == std::string::npos) throw UsageError(opt + " " + item + ": expected NAME=...");
  return {item.substr(0, eq), item.substr(eq + 1)};
}

double parse_number(const std::string& s, const std::string& what) {
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw UsageError(what + ": '" + s + "' is not a number");
  }
}

// The request's options in the library's terms (backend: the one chosen for all ranks).
api::FitOptions library_options(const FitRequest& r) {
  api::FitOptions o;
  o.model = r.model;
  o.peaks = r.peaks;
  o.background = r.background;
  for (const auto& item : r.fix) {
    auto [name, value] = split_item(item, "--fix");
    const double v = parse_number(value, "--fix " + item);
    if (!std::isfinite(v)) throw UsageError("--fix " + item + ": value must be finite");
    o.fix.emplace_back(name, v);
  }
  for (const auto& item : r.bound) {
    auto [name, value] = split_item(item, "--bound");
    const auto colon = value.find(':');
    if (colon == std::string::npos) throw UsageError("--bound " + item + ": expected NAME=LO:HI");
    o.bounds.emplace_back(name, api::Bound{parse_number(value.substr(0, colon), "--bound " + item),
                                           parse_number(value.substr(colon + 1), "--bound " + item)});
  }
  o.expr = r.expr;
  for (std::size_t at = 0; !r.params.empty() && at != std::string::npos;) {
    const std::size_t comma = r.params.find(',', at);
    o.params.push_back(r.params.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    at = comma == std::string::npos ? comma : comma + 1;
  }
  for (const auto& item : r.consts) {
    auto [name, value] = split_item(item, "--const");
    o.consts.emplace_back(name, parse_number(value, "--const " + item));
  }
  for (const auto& item : r.start) {
    auto [name, value] = split_item(item, "--start");
    o.start.emplace_back(name, parse_number(value, "--start " + item));
  }
  o.model_file = r.model_file;
  for (const auto& item : r.derive) {
    auto [name, text] = split_item(item, "--derive");
    o.derive.emplace_back(name, text);
  }
  o.estimator = r.estimator;
  o.max_iter = r.max_iter;
  o.tol = r.tol;
  o.threads = r.threads;
  o.backend = r.backend;
  o.device = r.device;
  o.gpu_kernel = r.gpu_kernel;
  o.roi = fit::parse_roi(r.roi);
  o.bin = r.bin;
  return o;
}

// Opens the cube and its sweep and checks their shapes and values.
FitInputInfo open_input(io::InputFile& in, const FitRequest& r, const api::FitOptions& o) {
  FitInputInfo info;
  info.cube_name = r.sig.empty() ? r.data : r.sig;
  info.cube = in.require(info.cube_name, 3, "[n_sweep, ny, nx]");
  info.contiguous = info.cube.chunk.empty();
  if (!r.sig.empty()) {
    const io::DatasetInfo ref = in.require(r.ref, 3, "[n_sweep, ny, nx]");
    info.contiguous = info.contiguous && ref.chunk.empty();
    if (ref.dims != info.cube.dims)
      throw UsageError(r.input + ": " + r.ref + " and " + r.sig + " differ in shape");
  }
  info.sweep = in.read_vector(r.sweep);
  if (info.sweep.size() != info.cube.dims[0])
    throw UsageError(r.input + ": " + r.sweep + " has " + std::to_string(info.sweep.size()) + " values but " +
                     info.cube_name + " has " + std::to_string(info.cube.dims[0]) + " sweep points");
  for (double v : info.sweep)
    if (!std::isfinite(v)) throw UsageError(r.input + ": " + r.sweep + " holds a non-finite value");
  // Units for the output's attributes, where the input says them.
  info.x_unit = in.has_attribute("/", "x_unit") ? in.read_attribute_string("/", "x_unit") : "sweep unit";
  info.y_unit = !r.sig.empty()                     ? "sig/ref"
                : in.has_attribute("/", "y_unit") ? in.read_attribute_string("/", "y_unit")
                                                  : "data unit";
  const auto& d = info.cube.dims;
  info.geometry = fit::make_geometry(std::int64_t(d[0]), std::int64_t(d[1]), std::int64_t(d[2]), o.roi, o.bin);
  return info;
}

// What the fit's results depend on, one item per line (see part.hpp): the
// input's identity and every option that changes a bit of the output, but not
// ranks, threads, chunks, the part or the output's name. Rank 0 looks at the
// files; every rank gets the same text.
std::string fingerprint_text(MPI_Comm comm, const FitRequest& r, const io::DatasetInfo& cube,
                             const fit::CubeGeometry& g, const fit::ModelSpec& spec, const std::string& backend) {
  auto files = mpi::broadcast_from_root(
      comm, "input=" + file_identity(r.input) +
                (r.guess == "auto" ? "\nguess=auto" : "\nguess=" + file_identity(r.guess)));
  std::string t = "command=fit\nversion=" + version_line() + "\n" + files + "\n";
  std::string dims;
  for (auto d : cube.dims) dims += (dims.empty() ? "" : "x") + std::to_string(d);
  t += "cube=" + cube.name + " " + dims + " " + cube.type + "\n";
  t += "data=" + r.data + "\nsig=" + r.sig + "\nref=" + r.ref + "\nsweep=" + r.sweep + "\nmask=" + r.mask + "\n";
  if (spec.kind != fit::ModelKind::expression) {
    t += "model=" + r.model + "\npeaks=" + std::to_string(r.peaks) + "\nbackground=" + r.background + "\n";
  } else {
    t += fit::describe_text(spec.user->description());  // the whole model, wherever it came from
  }
  t += "roi=" + fit::roi_text({g.y0, g.y1, g.x0, g.x1}) + "\nbin=" + std::to_string(g.bin) + "\n";
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    std::string out;
    for (const auto& item : v) out += (out.empty() ? "" : ";") + item;
    return out;
  };
  t += "fix=" + sorted(r.fix) + "\nbound=" + sorted(r.bound) + "\n";
  char tol[40];
  *std::to_chars(tol, tol + sizeof tol - 1, r.tol).ptr = '\0';  // shortest exact form
  t += "estimator=" + r.estimator + "\nmax_iter=" + std::to_string(r.max_iter) + "\ntol=" + tol + "\n";
  t += "backend=" + backend + "\n";
  // The GPU kernels round differently (fused multiply-adds); the CPU ignores it.
  if (backend == "cuda") t += "gpu_kernel=" + r.gpu_kernel + "\n";
  return t;
}

// A model of the user's own is compiled once per node: the node's first rank
// builds it into the model cache while the others wait, then every rank
// loads it from there (a cache shared by several nodes is safe: fit/jit.hpp).
bool own_model(const api::FitOptions& o) {
  return !o.expr.empty() || !o.model_file.empty() || !api::is_builtin_model(o.model);
}

void compile_user_model(const api::FitOptions& o, MPI_Comm comm) {
  if (!own_model(o)) return;
  std::string error;
  if (mpi::node_place(comm).local_rank == 0) {
    try {
      (void)fit::jit::build(fit::user_model_source(fit::ExprModel(api::describe_user_model(o).source)));
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (const std::string agreed = mpi::agree_error(comm, error); !agreed.empty()) throw UsageError(agreed);
}


// The part's rows and datasets, and the shapes a complete output has.
struct OutputPlan {
  Part part;
  mpi::Range band;  // this job's output rows
  PartStamp stamp;
  Shapes shapes;
  std::vector<std::uint64_t> dims;  // of every map
  fit::DerivedMaps derived;
};

OutputPlan plan_output(MPI_Comm comm, const FitRequest& r, const FitInputInfo& info,
                       const api::CubeFitter& fitter) {
  const fit::CubeGeometry& g = info.geometry;
  OutputPlan o;
  o.part = parse_part(r.part);
  o.band = part_range(g.ny, o.part);
  o.derived = fit::derived_maps(fitter.spec());
  PartStamp& s = o.stamp;
  s.part = o.part;
  s.rows = o.band;
  s.total_rows = g.ny;
  for (const auto& n : fitter.param_names()) s.datasets.push_back("/params/" + n);
  for (const auto& n : fitter.param_names()) s.datasets.push_back("/sigma/" + n);
  for (const char* n : {"/chi2", "/state", "/iterations"}) s.datasets.emplace_back(n);
  for (const auto& n : o.derived.names) s.datasets.push_back("/derived/" + n);
  if (fitter.derived_sigma())
    for (const auto& n : o.derived.names) s.datasets.push_back("/derived_sigma/" + n);
  s.summed = {"ranks", "seconds_read_fit_write", "seconds_total", "state_counts"};
  s.fingerprint_text = fingerprint_text(comm, r, info.cube, g, fitter.spec(), fitter.backend());
  o.dims = {std::uint64_t(o.band.size()), std::uint64_t(g.nx)};
  o.shapes = {{"/sweep", {std::uint64_t(g.n_sweep)}}};
  for (const auto& d : s.datasets) o.shapes.emplace_back(d, o.dims);
  return o;
}

// Spectra as read, [pixel][n_sweep]: a vector whose values are not set to 0
// first (every one is written by the read; zeroing a 100 MB cube first costs a
// pass over it, 0.01-0.02 s here).
template <class T>
struct NoInit : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = NoInit<U>;
  };
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
};
using Spectra = std::vector<float, NoInit<float>>;

// The most rows any rank has in chunk k of a pass over `total` rows split
// among the ranks: the block reads of read_spectra are collective, so every
// rank makes as many as this needs.
std::int64_t most_rows(std::int64_t total, int ranks, std::int64_t n_chunks, std::int64_t k) {
  std::int64_t most = 0;
  for (int q = 0; q < ranks; ++q)
    most = std::max(most, mpi::chunk_range(mpi::split_rows(total, ranks, q), n_chunks, k).size());
  return most;
}

// Reads the input of output rows [r0, r1) (all ranks call it together, each
// with the same most_rows) and returns their spectra, binned and normalised
// (fit::bin_spectra), [pixel][n_sweep]. A contiguous dataset is read in blocks
// of rows of about 1 MiB into one buffer, each turned into its spectra while
// it is in cache: the whole slab in a buffer of its own cost as much again in
// page faults and a transposition from memory (0.14 s -> 0.08 s for a 512 x
// 512 x 100 cube). A chunked dataset is read in one piece, as its chunks may
// span many rows (and be compressed). `each(y_rows, b0, b1)` is called after
// the spectra of rows [b0, b1) are made.
Spectra read_spectra(
    io::InputFile& in, const FitRequest& r, const FitInputInfo& info, std::int64_t r0, std::int64_t r1,
    std::int64_t most, const std::function<void(const float*, std::int64_t, std::int64_t)>& each = nullptr) {
  const fit::CubeGeometry& g = info.geometry;
  const bool sigref = !r.sig.empty();
  const std::int64_t row_values = g.n_sweep * g.nx * g.bin * g.bin * (sigref ? 2 : 1);
  const std::int64_t whole = std::max<std::int64_t>(most, 1);
  const std::int64_t step =
      info.contiguous ? std::clamp<std::int64_t>((std::int64_t(1) << 18) / row_values, 1, whole) : whole;
  const std::int64_t reads = std::max<std::int64_t>(1, (most + step - 1) / step);
  Spectra y(static_cast<std::size_t>((r1 - r0) * g.nx * g.n_sweep));
  std::vector<float> a, ref;
  for (std::int64_t k = 0; k < reads; ++k) {
    const std::int64_t b0 = std::min(r1, r0 + k * step), b1 = std::min(r1, b0 + step);
    const fit::Roi b = g.input_block(b0, b1);
    const io::Block block{b.y0, b.y1, b.x0, b.x1};
    a.resize(static_cast<std::size_t>(g.n_sweep * block.pixels()));
    in.read_slab(info.cube_name, block, a);
    if (sigref) {
      ref.resize(a.size());
      in.read_slab(r.ref, block, ref);
    }
    if (b1 == b0) continue;
    float* rows = y.data() + (b0 - r0) * g.nx * g.n_sweep;
    fit::bin_spectra_into(g, b1 - b0, a.data(), sigref ? ref.data() : nullptr, rows);
    if (each) each(rows, b0, b1);
  }
  return y;
}

// The chunks of the two passes: every rank's share of all rows (the mean
// spectrum) and of the part's rows (the fit).
struct ChunkPlans {
  mpi::Range mine, fit_rows;
  mpi::ChunkPlan mean, fit;
  bool keep = false;  // the mean pass keeps what it read for the fit pass
  int ranks = 1;
};

ChunkPlans plan_chunks(const FitRequest& r, const RunContext& ctx, const fit::CubeGeometry& g,
                       const OutputPlan& o, int n_params) {
  ChunkPlans c;
  c.ranks = ctx.size;
  c.mine = mpi::split_rows(g.ny, ctx.size, ctx.rank);
  const mpi::Range share = mpi::split_rows(o.band.size(), ctx.size, ctx.rank);
  c.fit_rows = {o.band.begin + share.begin, o.band.begin + share.end};
  const std::uint64_t copies = r.sig.empty() ? kInputCopies : kInputCopiesSigRef;
  const std::uint64_t bytes_per_row =
      std::uint64_t(g.n_sweep) * g.nx * g.bin * g.bin * sizeof(float) * copies +
      std::uint64_t(g.nx) * (g.n_sweep + kParamArrays * n_params) * sizeof(float);
  const std::uint64_t budget = mpi::parse_size(r.memory_budget);
  c.mean = mpi::plan_chunks(g.ny, ctx.size, budget, bytes_per_row);
  c.fit = mpi::plan_chunks(o.band.size(), ctx.size, budget, bytes_per_row);
  // With the whole output and one chunk per rank, the cube is read once.
  c.keep = o.part.count == 1 && c.mean.n_chunks == 1;
  return c;
}

// The automatic start: every rank sums its rows' spectra over the start
// grid's column bands (one band for the built-in models), the per-row sums of
// all rows are gathered in row order, so the mean and the cells (and the
// starts fitted to them) have the same bits whatever the number of ranks.
// Returns what it read when the plan keeps it.
Spectra automatic_start(io::InputFile& in, const FitRequest& r, const FitInputInfo& info, const ChunkPlans& c,
                        MPI_Comm comm, api::CubeFitter& fitter) {
  const fit::CubeGeometry& g = info.geometry;
  const fit::CellGrid grid = fitter.start_grid(g.ny, g.nx);
  const std::int64_t per_row = grid.kx * g.n_sweep;
  std::vector<double> sums(std::size_t(c.mine.size() * per_row));
  std::vector<std::int64_t> counts(static_cast<std::size_t>(c.mine.size() * grid.kx));
  Spectra kept;
  for (std::int64_t k = 0; k < c.mean.n_chunks; ++k) {
    const mpi::Range ch = mpi::chunk_range(c.mine, c.mean.n_chunks, k);
    // The band sums of each block of rows while its spectra are in cache.
    auto y = read_spectra(in, r, info, ch.begin, ch.end, most_rows(g.ny, c.ranks, c.mean.n_chunks, k),
                          [&](const float* rows, std::int64_t b0, std::int64_t b1) {
                            fit::band_sums(rows, b1 - b0, grid, int(g.n_sweep),
                                           sums.data() + (b0 - c.mine.begin) * per_row,
                                           counts.data() + (b0 - c.mine.begin) * grid.kx);
                          });
    if (c.keep) kept = std::move(y);
  }
  const auto all_sums = mpi::allgather_rows(comm, sums, g.ny, per_row);
  const auto all_counts = mpi::allgather_rows(comm, counts, g.ny, grid.kx);
  if (std::all_of(all_counts.begin(), all_counts.end(), [](std::int64_t k) { return k == 0; }))
    throw UsageError(r.input + ": " + info.cube_name + " has no pixel with finite, non-zero data");
  fitter.start_from_sums(all_sums, all_counts, grid);  // same on every rank
  return kept;
}

// --guess FILE: a previous fit of the same grid, whose parameters start this one.
std::unique_ptr<io::InputFile> open_previous(MPI_Comm comm, const FitRequest& r, const fit::CubeGeometry& g,
                                             const std::vector<std::string>& names) {
  auto previous = std::make_unique<io::InputFile>(comm, r.guess);
  for (const auto& n : names) {
    const auto d = previous->require("/params/" + n, 2, "[ny, nx]");
    if (std::int64_t(d.dims[0]) != g.ny || std::int64_t(d.dims[1]) != g.nx)
      throw UsageError(r.guess + ": /params/" + n + " is " + std::to_string(d.dims[0]) + " x " +
                       std::to_string(d.dims[1]) + ", the fit is " + std::to_string(g.ny) + " x " +
                       std::to_string(g.nx));
  }
  return previous;
}

void check_mask(io::InputFile& in, const FitRequest& r, const fit::CubeGeometry& g) {
  const auto d = in.require(r.mask, 2, "[ny, nx]");
  if (std::int64_t(d.dims[0]) != g.ny_in || std::int64_t(d.dims[1]) != g.nx_in)
    throw UsageError(r.input + ": " + r.mask + " must be " + std::to_string(g.ny_in) + " x " +
                     std::to_string(g.nx_in) + " like the image");
}

// Start values of output rows [r0, r1) from the previous fit, [pixel][n_params];
// NaN where that fit failed (state bad_start).
std::vector<float> read_starts(io::InputFile& previous, const std::vector<std::string>& names, std::int64_t r0,
                               std::int64_t r1, std::int64_t nx) {
  const int P = int(names.size());
  const std::int64_t npix = (r1 - r0) * nx;
  std::vector<float> start(std::size_t(npix * P)), map(static_cast<std::size_t>(npix));
  for (int j = 0; j < P; ++j) {
    previous.read_block("/params/" + names[std::size_t(j)], io::Block{r0, r1, 0, nx}, map);
    for (std::int64_t p = 0; p < npix; ++p) start[std::size_t(p * P + j)] = map[std::size_t(p)];
  }
  return start;
}

std::vector<std::uint8_t> read_mask(io::InputFile& in, const FitRequest& r, const fit::CubeGeometry& g,
                                    std::int64_t r0, std::int64_t r1) {
  const fit::Roi b = g.input_block(r0, r1);
  const io::Block block{b.y0, b.y1, b.x0, b.x1};
  std::vector<float> m(static_cast<std::size_t>(block.pixels()));
  in.read_block(r.mask, block, m);
  return fit::bin_mask(g, r1 - r0, m.data());
}

// Writes the maps of output rows [w0, w1) of the output file.
void write_rows(io::OutputFile& out, const api::CubeFitter& fitter, const fit::DerivedMaps& derived,
                const fit::FitResults& res, std::int64_t w0, std::int64_t w1, std::int64_t npix) {
  const auto& names = fitter.param_names();
  const int P = int(names.size());
  std::vector<float> map(static_cast<std::size_t>(npix));
  for (int j = 0; j < P; ++j) {
    for (std::int64_t p = 0; p < npix; ++p) map[std::size_t(p)] = res.params[std::size_t(p * P + j)];
    out.write_rows<float>("/params/" + names[std::size_t(j)], w0, w1, map);
    for (std::int64_t p = 0; p < npix; ++p) map[std::size_t(p)] = res.sigma[std::size_t(p * P + j)];
    out.write_rows<float>("/sigma/" + names[std::size_t(j)], w0, w1, map);
  }
  for (std::size_t k = 0; k < derived.names.size(); ++k) {
    fit::derived_values(fitter.spec(), int(k), res.params.data(), npix, map.data());
    out.write_rows<float>("/derived/" + derived.names[k], w0, w1, map);
    if (!fitter.derived_sigma()) continue;  // the same on every rank: the write is collective
    fit::derived_sigma(fitter.spec(), int(k), res.params.data(), res.covariance.data(), npix, map.data());
    out.write_rows<float>("/derived_sigma/" + derived.names[k], w0, w1, map);
  }
  out.write_rows<float>("/chi2", w0, w1, res.chi2);
  out.write_rows<std::int32_t>("/state", w0, w1, res.state);
  out.write_rows<std::int32_t>("/iterations", w0, w1, res.iterations);
}

// What the chunk loop measured: the state counts of this rank and the seconds
// spent reading, fitting and writing.
struct FitTally {
  std::vector<std::int64_t> states = std::vector<std::int64_t>(core::n_fit_states, 0);
  std::vector<double> seconds = {0, 0, 0};
};

// Fits the part's rows chunk by chunk: read, fit through the library, write.
FitTally fit_chunks(io::InputFile& in, io::OutputFile& out, const FitRequest& r, const FitInputInfo& info,
                    const OutputPlan& o, const ChunkPlans& c, Spectra kept,
                    io::InputFile* previous, api::CubeFitter& fitter, Progress& progress) {
  const fit::CubeGeometry& g = info.geometry;
  FitTally tally;
  for (std::int64_t k = 0; k < c.fit.n_chunks; ++k) {
    const mpi::Range ch = mpi::chunk_range(c.fit_rows, c.fit.n_chunks, k);
    const std::int64_t npix = ch.size() * g.nx;
    auto t0 = Clock::now();
    // Same decision on every rank, so the collective reads still match.
    const auto y = c.keep && !previous ? std::move(kept)
                                       : read_spectra(in, r, info, ch.begin, ch.end,
                                                      most_rows(o.band.size(), c.ranks, c.fit.n_chunks, k));
    std::vector<float> start;
    if (previous) start = read_starts(*previous, fitter.param_names(), ch.begin, ch.end, g.nx);
    std::vector<std::uint8_t> mask;
    if (!r.mask.empty()) mask = read_mask(in, r, g, ch.begin, ch.end);
    tally.seconds[0] += seconds_since(t0);
    t0 = Clock::now();
    fit::FitResults res;
    progress.run([&] {
      res = fitter.fit_rows(y.data(), ch.begin, ch.size(), g.nx, mask.empty() ? nullptr : mask.data(),
                            previous ? &start : nullptr);
    });
    tally.seconds[1] += seconds_since(t0);
    t0 = Clock::now();
    write_rows(out, fitter, o.derived, res, ch.begin - o.band.begin, ch.end - o.band.begin, npix);
    for (std::int32_t s : res.state)
      if (s >= 0 && s < core::n_fit_states) ++tally.states[std::size_t(s)];
    tally.seconds[2] += seconds_since(t0);
  }
  return tally;
}

// The attributes of the output (the same values on every rank).
void write_attributes(io::OutputFile& out, const FitRequest& r, const RunContext& ctx, const FitInputInfo& info,
                      const api::CubeFitter& fitter, const OutputPlan& o,
                      const std::vector<std::int64_t>& states, const std::vector<double>& seconds,
                      Clock::time_point t_start) {
  const fit::ModelSpec& spec = fitter.spec();
  const fit::CubeGeometry& g = info.geometry;
  const bool own = spec.kind == fit::ModelKind::expression;
  out.write_attribute("/", "model", own ? spec.user->description().name : spec.model_name());
  out.write_attribute("/", "peaks", std::int64_t(spec.is_peak_model() ? spec.n_peaks : 0));
  out.write_attribute("/", "background", spec.linear_background ? "linear" : "constant");
  out.write_attribute("/", "x_mid", spec.x_mid);
  if (own) {
    out.write_attribute("/", "model_origin", spec.user->description().origin);
    out.write_attribute("/", "model_definition", fit::describe_text(spec.user->description()));
    out.write_attribute("/", "expression_canonical", spec.user->model().canonical());
  }
  out.write_attribute("/", "param_names", fitter.param_names());
  out.write_attribute("/", "param_units", spec.param_units(info.x_unit, info.y_unit));
  out.write_attribute("/", "estimator", r.estimator);
  out.write_attribute("/", "tol", r.tol);
  out.write_attribute("/", "max_iter", std::int64_t(r.max_iter));
  out.write_attribute("/", "input", r.input);
  out.write_attribute("/", "data", info.cube_name);
  out.write_attribute("/", "roi", std::vector<double>{double(g.y0), double(g.y1), double(g.x0), double(g.x1)});
  out.write_attribute("/", "bin", std::int64_t(g.bin));
  out.write_attribute("/", "guess", r.guess);
  out.write_attribute("/", "command_line", r.command_line);
  out.write_attribute("/", "version", version_line());
  out.write_attribute("/", "ranks", std::int64_t(ctx.size));
  out.write_attribute("/", "backend", fitter.backend());
  if (!fitter.gpu_kernel().empty()) out.write_attribute("/", "gpu_kernel", fitter.gpu_kernel());
  std::vector<std::string> state_names;
  for (int s = 0; s < core::n_fit_states; ++s) state_names.emplace_back(core::state_name(core::FitState(s)));
  out.write_attribute("/", "state_names", state_names);
  out.write_attribute("/", "state_counts", std::vector<double>(states.begin(), states.end()));
  out.write_attribute("/", "seconds_read_fit_write", seconds);
  out.write_attribute("/", "seconds_total", seconds_since(t_start));
  if (!o.derived.names.empty())
    out.write_attribute("/derived", own ? "definition" : "bnv_definition",
                        o.derived.definition);
}

void report(const FitRequest& r, const fit::CubeGeometry& g, const OutputPlan& o,
            const std::vector<std::int64_t>& n, std::int64_t refitted) {
  const std::string where = o.part.count == 1 ? "" : "part " + part_name(o.part) + ", rows " +
                                                        std::to_string(o.band.begin) + ":" +
                                                        std::to_string(o.band.end) + " of ";
  std::fprintf(stderr,
               "tessera: wrote %s (%s%lld x %lld): %lld converged, %lld iteration limit, %lld singular, "
               "%lld non-finite input, %lld masked, %lld bad start\n",
               r.output.c_str(), where.c_str(), (long long)g.ny, (long long)g.nx, (long long)n[0],
               (long long)n[1], (long long)n[2], (long long)n[3], (long long)n[4], (long long)n[5]);
  if (refitted > 0)
    std::fprintf(stderr,
                 "tessera: %lld pixels fitted clearly worse than their row neighbours were fitted again "
                 "from other starts\n",
                 (long long)refitted);
}

}  // namespace

int run_fit(const FitRequest& r, const RunContext& ctx) {
  const auto t_start = Clock::now();
  MPI_Comm comm = MPI_COMM_WORLD;
  api::FitOptions opt = library_options(r);
  if (std::string why; !opt.IsValid(&why)) throw UsageError(why);
  if (r.sig.empty() != r.ref.empty()) throw UsageError("--sig and --ref go together");
  (void)mpi::parse_size(r.memory_budget);  // checked before any file is opened
  (void)parse_part(r.part);

  io::InputFile in(comm, r.input);
  const FitInputInfo info = open_input(in, r, opt);
  const fit::CubeGeometry& g = info.geometry;
  const std::vector<float> x(info.sweep.begin(), info.sweep.end());
  compile_user_model(opt, comm);
  // The options are checked against the model and sweep before the ranks
  // agree on a backend (which may say that the GPU was not found).
  api::FitOptions on_cpu = opt;
  on_cpu.backend = "cpu";
  api::CubeFitter fitter(on_cpu, x);
  const Backend backend = choose_backend(r.backend, r.device, r.quiet, ctx, comm);
  std::string rejected;  // a model of one's own that NVRTC rejects for the GPU
  try {
    fitter.use_backend(backend.name, backend.device);
  } catch (const std::invalid_argument& e) {
    rejected = e.what();
  }
  if (const std::string agreed = mpi::agree_error(comm, rejected); !agreed.empty()) throw UsageError(agreed);

  const OutputPlan o = plan_output(comm, r, info, fitter);
  if (skip_complete_output(comm, r.output, r.resume, r.force, o.stamp, o.shapes)) return 0;
  const ChunkPlans chunks = plan_chunks(r, ctx, g, o, fitter.spec().n_params());
  io::OutputFile out(comm, r.output, r.force);
  for (const auto& d : o.stamp.datasets)
    out.create_dataset(d, d == "/state" || d == "/iterations" ? io::DType::Int32 : io::DType::Float32, o.dims);
  out.create_dataset("/sweep", io::DType::Float64, {std::uint64_t(g.n_sweep)});
  out.write_all<double>("/sweep", info.sweep);

  Spectra kept;
  std::unique_ptr<io::InputFile> previous;
  if (r.guess == "auto") kept = automatic_start(in, r, info, chunks, comm, fitter);
  else previous = open_previous(comm, r, g, fitter.param_names());
  if (!r.mask.empty()) check_mask(in, r, g);

  Progress progress(comm, o.band.size() * g.nx, r.quiet, "fit");
  fitter.set_progress([&progress](std::int64_t n) { progress.add(n); });
  const FitTally tally = fit_chunks(in, out, r, info, o, chunks, std::move(kept), previous.get(), fitter, progress);
  progress.finish();

  const auto states = mpi::sum_all(comm, tally.states);
  const std::int64_t refitted = mpi::sum_all(comm, std::vector<std::int64_t>{fitter.refitted()})[0];
  write_attributes(out, r, ctx, info, fitter, o, states, mpi::max_all(comm, tally.seconds), t_start);
  write_stamp(out, o.stamp);
  write_complete(out);  // last: an output without it was never finished
  out.commit();
  if (ctx.is_root() && !r.quiet) report(r, g, o, states, refitted);
  return 0;
}

}  // namespace tessera::cli

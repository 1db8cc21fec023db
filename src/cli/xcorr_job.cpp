#include "xcorr_job.hpp"

#include <malloc.h>
#include <mpi.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "api/xcorr.hpp"
#include "backend.hpp"
#include "fft_wisdom.hpp"
#include "io/error.hpp"
#include "io/h5_input.hpp"
#include "io/h5_output.hpp"
#include "mpi/collectives.hpp"
#include "mpi/decomposition.hpp"
#include "mpi/pair_gather.hpp"
#include "mpi/pairs.hpp"
#include "part.hpp"
#include "part_file.hpp"
#include "progress.hpp"
#include "xcorr_batches.hpp"
#include "xcorr/xcorr.hpp"
#include "xcorr_csv.hpp"

namespace tessera::cli {
namespace {

using xcorr_job::BatchData;
using xcorr_job::BatchPlan;
using xcorr_job::InputLayout;
using xcorr_job::JobPart;
using xcorr_job::note_template_cache;
using xcorr_job::plan_batches;
using xcorr_job::read_batch;

// The fingerprint's line for --min-overlap: only when set, so that parts
// written before the option existed still resume and merge.
std::string min_overlap_line(double f) {
  if (!(f > 0)) return "";
  char v[40];
  *std::to_chars(v, v + sizeof v - 1, f).ptr = '\0';  // shortest exact form
  return std::string("min_overlap=") + v + "\n";
}

// The fingerprint's lines for --top and its distance: only when --top is
// given, so that parts written before the option existed still resume and merge.
std::string top_lines(const xcorr::Options& opt) {
  if (opt.top_k <= 0) return "";
  return "top=" + std::to_string(opt.top_k) + "\nmin_distance=" + std::to_string(opt.min_distance) + "\n";
}

// The fingerprint's lines for the mask datasets: only when given.
std::string mask_lines(const XcorrRequest& r) {
  std::string s;
  if (!r.image_masks.empty()) s += "image_masks=" + r.image_masks + "\n";
  if (!r.template_masks.empty()) s += "template_masks=" + r.template_masks + "\n";
  return s;
}

// The request's options for the library; UsageError with the option's message.
api::XcorrOptions options_of(const XcorrRequest& r) {
  api::XcorrOptions o;
  int a = 0, b = 0;
  char tail = 0;
  const int n = std::sscanf(r.crop.c_str(), "%d,%d%c", &a, &b, &tail);
  if (n == 1 && r.crop.find(',') == std::string::npos) b = a;
  else if (n != 2) throw UsageError("--crop must be A,B or A (rows, columns dropped on each side), got '" + r.crop + "'");
  o.crop_y = a;
  o.crop_x = b;
  o.eps = r.eps;
  o.min_overlap = r.min_overlap;
  o.normalize_input = r.normalize_input;
  o.mode = r.mode;
  o.exclusion = r.exclusion;
  o.fft_wisdom = r.fft_wisdom;
  o.top = r.top;
  o.min_distance = r.min_distance;
  o.threads = r.threads;
  o.backend = r.backend;
  o.device = r.device;
  if (std::string why; !o.IsValid(&why)) throw UsageError(why);
  return o;
}

InputLayout check_input(io::InputFile& in, const XcorrRequest& r, const xcorr::Options& opt) {
  InputLayout s;
  s.images = in.require(r.images, 3, "[n, H, W]");
  s.templates = in.require(r.templates, 3, "[k, h, w]");
  s.pairs = in.describe(r.pairs);
  const io::DatasetInfo& pi = s.pairs;
  if (pi.rank() != 2 || (pi.dims.size() == 2 && pi.dims[1] != 2))
    throw UsageError(io::message(r.input, pi.name, "must be [p, 2] (image index, template index), got " +
                                                       std::to_string(pi.rank()) + " dimensions"));
  s.all_pairs = in.read_integers(r.pairs, 2, "[p, 2]");
  s.n_img = std::int64_t(s.images.dims[0]);
  s.n_tpl = std::int64_t(s.templates.dims[0]);
  if (std::string e = api::check_pair_indices(s.all_pairs, s.n_img, s.n_tpl); !e.empty())
    throw UsageError(io::message(r.input, pi.name, e));
  const auto& id = s.images.dims;
  const auto& td = s.templates.dims;
  if (std::string e = api::check_image_size(std::int64_t(std::min<std::uint64_t>(id[1], INT64_MAX)),
                                            std::int64_t(std::min<std::uint64_t>(id[2], INT64_MAX)));
      !e.empty())
    throw UsageError(io::message(r.input, s.images.name, e));
  s.H = int(id[1]), s.W = int(id[2]), s.h = int(td[1]), s.w = int(td[2]);
  if (std::string e = api::check_template_fits(std::int64_t(id[1]), std::int64_t(id[2]),
                                               std::int64_t(td[1]), std::int64_t(td[2]));
      !e.empty())
    throw UsageError(r.input + ": " + e);
  auto masks = [&](const std::string& name, const io::DatasetInfo& of, const char* what) {
    if (name.empty()) return io::DatasetInfo{};
    io::DatasetInfo m = in.require(name, 3, "[n, rows, cols] like the " + std::string(what));
    std::vector<std::int64_t> a(m.dims.begin(), m.dims.end()), b(of.dims.begin(), of.dims.end());
    if (std::string e = api::check_mask_shape(a, b, what); !e.empty()) throw UsageError(io::message(r.input, m.name, e));
    return m;
  };
  s.image_masks = masks(r.image_masks, s.images, "images");
  s.template_masks = masks(r.template_masks, s.templates, "templates");
  try {
    s.region = xcorr::search_region(s.H, s.W, s.h, s.w, opt);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--crop: ") + e.what());
  }
  return s;
}

JobPart job_part(const XcorrRequest& r, const InputLayout& s) {
  JobPart j;
  j.part = parse_part(r.part);
  j.total_pairs = std::int64_t(s.all_pairs.size() / 2);
  j.band = part_range(j.total_pairs, j.part);
  j.pairs.assign(s.all_pairs.begin() + 2 * j.band.begin, s.all_pairs.begin() + 2 * j.band.end);
  j.n_pairs = j.band.size();
  return j;
}

std::string dims_text(const io::DatasetInfo& d) {
  std::string t;
  for (auto v : d.dims) {
    if (!t.empty()) t += 'x';
    t += std::to_string(v);
  }
  return d.name + " " + t + " " + d.type;
}

// Collective (the input's identity comes from rank 0).
PartStamp make_stamp(MPI_Comm comm, const XcorrRequest& r, const InputLayout& s, const xcorr::Options& opt,
                     const JobPart& j, const Backend& backend, const FftWisdomUse& wisdom) {
  PartStamp stamp;
  stamp.part = j.part;
  stamp.rows = j.band;
  stamp.total_rows = j.total_pairs;
  stamp.datasets = {"/coords", "/peaks", "/quality"};
  if (r.subpixel) stamp.datasets.emplace_back("/subpixel");
  if (opt.top_k > 0) stamp.datasets.insert(stamp.datasets.end(), {"/top_coords", "/top_peaks"});
  stamp.summed = {"ranks", "seconds_read_correlate", "seconds_total"};
  char eps[40];
  *std::to_chars(eps, eps + sizeof eps - 1, opt.eps).ptr = '\0';  // shortest exact form
  stamp.fingerprint_text =
      "command=xcorr\nversion=" + version_line() + "\n" +
      broadcast_from_root(comm, "input=" + file_identity(r.input)) + "\nimages=" + dims_text(s.images) +
      "\ntemplates=" + dims_text(s.templates) + "\npairs=" + dims_text(s.pairs) +
      "\ncrop=" + std::to_string(opt.crop_y) + "," + std::to_string(opt.crop_x) + "\neps=" + eps +
      "\nnormalize_input=" + std::to_string(opt.normalize_input) + "\nmode=" + r.mode +
      "\nexclusion=" + std::to_string(opt.exclusion) + "\nsubpixel=" + std::to_string(r.subpixel) +
      "\nbackend=" + backend.name + "\n" + min_overlap_line(opt.min_overlap) + mask_lines(r) + top_lines(opt) +
      // Plans from wisdom may round differently from FFTW_ESTIMATE's: only then a line.
      (wisdom.digest.empty() ? "" : "fft_wisdom=" + wisdom.digest + "\n");
  return stamp;
}

// The datasets of the output, with their element types and dimensions.
struct OutputDataset {
  const char* name;
  io::DType type;
  std::vector<std::uint64_t> dims;
};

std::vector<OutputDataset> output_datasets(std::int64_t n_pairs, bool subpixel, int top_k) {
  const auto P = std::uint64_t(n_pairs), K = std::uint64_t(top_k);
  std::vector<OutputDataset> d{{"/coords", io::DType::Int64, {P, 2}},
                               {"/peaks", io::DType::Float32, {P}},
                               {"/quality", io::DType::Float32, {P, 2}}};
  if (subpixel) d.push_back({"/subpixel", io::DType::Float64, {P, 2}});
  if (top_k > 0) {
    d.push_back({"/top_coords", io::DType::Int64, {P, K, 2}});
    d.push_back({"/top_peaks", io::DType::Float32, {P, K}});
  }
  return d;
}

Shapes shapes_of(const std::vector<OutputDataset>& datasets) {
  Shapes shapes;
  for (const auto& d : datasets) shapes.emplace_back(d.name, d.dims);
  return shapes;
}

mpi::PairRecord record_of(std::int64_t index, const xcorr::Peak& q, std::span<const core::ZnccBest> top) {
  mpi::PairRecord r{index, q.y, q.x, q.value, q.sub_y, q.sub_x, q.sharpness, q.peak_ratio, {}};
  for (const core::ZnccBest& c : top) r.top.push_back({c.y, c.x, c.value});
  return r;
}

xcorr::Peak peak_of(const mpi::PairRecord& r) {
  return {int(r.y), int(r.x), r.value, r.sub_y, r.sub_x, r.sharpness, r.peak_ratio};
}

std::vector<core::ZnccBest> top_of(const mpi::PairRecord& r) {
  std::vector<core::ZnccBest> top;
  for (const mpi::TopRecord& c : r.top) top.push_back({c.value, int(c.y), int(c.x)});
  return top;
}

// The batch's pairs through the library's engine, on a worker thread while
// this thread forwards the progress.
std::vector<mpi::PairRecord> correlate_batch(api::PairCorrelator& engine, const BatchData& b, const JobPart& j,
                                             const InputLayout& s, const BatchPlan& plan, int top_k,
                                             Progress& progress) {
  std::vector<mpi::PairRecord> records(b.pairs.size());
  progress.run([&] {
    if (b.pairs.empty()) return;
    std::vector<std::pair<int, int>> local(b.pairs.size());
    for (std::size_t k = 0; k < b.pairs.size(); ++k) {
      const std::int64_t p = b.pairs[k];
      local[k] = {int(std::lower_bound(b.imgs.begin(), b.imgs.end(), j.pairs[std::size_t(2 * p)]) - b.imgs.begin()),
                  int(std::lower_bound(b.tpls.begin(), b.tpls.end(), j.pairs[std::size_t(2 * p + 1)]) - b.tpls.begin())};
    }
    const std::vector<std::uint8_t> cache = xcorr_job::kept_templates(plan, b.imgs.size(), b.tpls.size(), local);
    std::vector<core::ZnccBest> top;  // [pairs][top_k]
    const std::vector<xcorr::Peak> peaks =
        engine.correlate({b.img_data.data(), std::int64_t(b.imgs.size()), s.H, s.W,
                          b.img_masks.empty() ? nullptr : b.img_masks.data()},
                         {b.tpl_data.data(), std::int64_t(b.tpls.size()), s.h, s.w,
                          b.tpl_masks.empty() ? nullptr : b.tpl_masks.data()},
                         local, cache, [&](std::int64_t n) { progress.add(n); }, &top);
    const auto K = std::size_t(top_k);
    for (std::size_t k = 0; k < b.pairs.size(); ++k)
      records[k] = record_of(b.pairs[k], peaks[k], std::span<const core::ZnccBest>(top).subspan(k * K, K));
  });
  return records;
}

// Collective: the job's results on rank 0 in the order of its pairs (empty elsewhere).
api::XcorrResult gather_results(MPI_Comm comm, const RunContext& ctx, std::int64_t n_pairs, int top_k,
                                const std::vector<mpi::PairRecord>& mine) {
  const std::vector<mpi::PairRecord> all = mpi::gather_pairs_in_order(comm, n_pairs, mine, top_k);
  api::XcorrResult result;
  if (!ctx.is_root()) return result;
  result.resize(n_pairs, top_k);
  for (const mpi::PairRecord& r : all) result.set(r.index, peak_of(r), top_of(r));
  return result;
}

struct Timings {
  Clock::time_point start;
  double read = 0, correlate = 0;
};

// Collective: the root attributes and the datasets' definitions (same values on every rank).
void write_attributes(io::OutputFile& out, MPI_Comm comm, const XcorrRequest& r, const RunContext& ctx,
                      const InputLayout& s, const xcorr::Options& opt, const BatchPlan& plan, int threads,
                      const Backend& backend, const Timings& t) {
  const std::vector<double> max_times = mpi::max_all(comm, std::vector<double>{t.read, t.correlate});
  const xcorr::Region& g = s.region;
  out.write_attribute("/", "input", r.input);
  out.write_attribute("/", "images", s.images.name);
  out.write_attribute("/", "templates", s.templates.name);
  out.write_attribute("/", "pairs", s.pairs.name);
  out.write_attribute("/", "image_shape", std::vector<double>{double(s.n_img), double(s.H), double(s.W)});
  out.write_attribute("/", "template_shape", std::vector<double>{double(s.n_tpl), double(s.h), double(s.w)});
  out.write_attribute("/", "mode", r.mode);
  out.write_attribute("/", "crop", std::vector<double>{double(opt.crop_y), double(opt.crop_x)});
  out.write_attribute("/", "search_region", std::vector<double>{double(g.y0), double(g.y1), double(g.x0), double(g.x1)});
  out.write_attribute("/", "eps", opt.eps);
  out.write_attribute("/", "min_overlap", opt.min_overlap);
  if (!s.image_masks.name.empty()) out.write_attribute("/", "image_masks", s.image_masks.name);
  if (!s.template_masks.name.empty()) out.write_attribute("/", "template_masks", s.template_masks.name);
  out.write_attribute("/", "normalize_input", std::int64_t(opt.normalize_input));
  out.write_attribute("/", "exclusion", std::int64_t(opt.exclusion));
  if (opt.top_k > 0) {
    out.write_attribute("/", "top", std::int64_t(opt.top_k));
    out.write_attribute("/", "min_distance", std::int64_t(opt.min_distance));
    out.write_attribute("/top_coords", "definition",
                        "(y, x) in the full map of the top K local maxima (each >= its up to 8 neighbours "
                        "in the searched region), highest first, each more than min_distance placements "
                        "(Chebyshev) from every higher one; ties to the first in row-major order; "
                        "(-1, -1) where there are fewer than K");
    out.write_attribute("/top_peaks", "definition", "R at /top_coords; NaN where there are fewer than K");
  }
  out.write_attribute("/", "fft_size", std::vector<double>{double(plan.fft.first), double(plan.fft.second)});
  out.write_attribute("/coords", "definition",
                      "(y, x) in the full (H+h-1) x (W+w-1) map: the template's top-left corner "
                      "lies at image position (y-h+1, x-w+1)");
  out.write_attribute("/quality", "columns", std::vector<std::string>{"sharpness", "peak_ratio"});
  out.write_attribute("/quality", "definition",
                      "sharpness = peak - mean of its (up to 8) neighbours in the searched region; "
                      "peak_ratio = peak / largest value at Chebyshev distance > exclusion "
                      "(+inf when that value is <= 0 or there is none)");
  if (r.subpixel)
    out.write_attribute("/subpixel", "definition",
                        "(y, x) of the vertex of a parabola through the peak and its two neighbours "
                        "along each axis, full-map frame; the integer peak where a neighbour is "
                        "outside the searched region or the parabola is not concave");
  out.write_attribute("/", "command_line", r.command_line);
  out.write_attribute("/", "version", version_line());
  out.write_attribute("/", "ranks", std::int64_t(ctx.size));
  out.write_attribute("/", "threads", std::int64_t(threads));
  out.write_attribute("/", "backend", backend.name);
  out.write_attribute("/", "seconds_read_correlate", max_times);
  out.write_attribute("/", "seconds_total", seconds_since(t.start));
}

// Collective: rank 0's results into the datasets.
void write_results(io::OutputFile& out, const api::XcorrResult& result, bool subpixel, int top_k) {
  out.write_all<std::int64_t>("/coords", result.coords);
  out.write_all<float>("/peaks", result.peaks);
  out.write_all<float>("/quality", result.quality);
  if (subpixel) out.write_all<double>("/subpixel", result.subpixel);
  if (top_k > 0) {
    out.write_all<std::int64_t>("/top_coords", result.top_coords);
    out.write_all<float>("/top_peaks", result.top_peaks);
  }
}

// Collective: the CSV table (after the HDF5 file is complete), then rank 0's summary line.
void finish(MPI_Comm comm, const XcorrRequest& r, const RunContext& ctx, const InputLayout& s, const JobPart& j,
            const api::XcorrResult& result, const Timings& t) {
  std::string csv_error;
  if (ctx.is_root() && !r.csv.empty())
    csv_error = write_xcorr_csv(r.csv, j.band.begin, j.pairs, result.coords, result.peaks, result.quality,
                                r.subpixel ? result.subpixel : std::vector<double>{},
                                {result.top_k, result.top_coords, result.top_peaks});
  io::throw_if_any(comm, csv_error);
  if (!ctx.is_root() || r.quiet) return;
  const std::string which = j.part.count == 1 ? "" : "part " + part_name(j.part) + ", pairs " +
                                                         std::to_string(j.band.begin) + ":" +
                                                         std::to_string(j.band.end) + " of ";
  std::fprintf(stderr, "tessera: wrote %s: %s%lld pairs (%lld images x %dx%d, %lld templates x %dx%d) in %.2f s\n",
               r.output.c_str(), which.c_str(), (long long)(j.part.count == 1 ? j.n_pairs : j.total_pairs),
               (long long)s.n_img, s.H, s.W, (long long)s.n_tpl, s.h, s.w, seconds_since(t.start));
}

}  // namespace

int run_xcorr(const XcorrRequest& r, const RunContext& ctx) {
  Timings t{Clock::now()};
  MPI_Comm comm = MPI_COMM_WORLD;
  const api::XcorrOptions options = options_of(r);
  const xcorr::Options opt = options.internal();
  const std::uint64_t budget = mpi::parse_size(r.memory_budget);
  const int threads = options.thread_count();
  // Keep freed buffers (prepared images, ~30 MB each for 1024^2) in the process
  // for the next image instead of handing them back to the kernel and faulting
  // fresh pages in again: blocks below 32 MiB come from malloc's heaps, which
  // are trimmed only beyond 1 GiB free.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // The CSV table is checked before any work, like the output file.
  if (!r.csv.empty()) io::throw_if_any(comm, ctx.is_root() ? csv_problem(r.csv, r.force) : "");

  io::InputFile in(comm, r.input);
  const InputLayout s = check_input(in, r, opt);
  // Before the output exists: --backend cuda without a device writes nothing.
  // With masks auto picks the CPU: masked pairs on the GPU (cuFFT for their
  // double correlations) have not yet run on a device, so only when asked for.
  const Backend backend =
      choose_backend(s.masked() && r.backend == "auto" ? "cpu" : r.backend, r.device, r.quiet, ctx, comm);
  if (s.masked() && !(opt.min_overlap > 0) && ctx.is_root() && !r.quiet)
    std::fprintf(stderr, "tessera: note: masks with --min-overlap 0: a placement that overlaps two valid pixels "
                         "has R = +-1 and can win; 0.3 to 0.5 is usual\n");
  // Masked pairs' double transforms are where FFTW_ESTIMATE costs most
  // (1280^2 inverse: 8 to 10 ms against 5 from measured plans).
  if (s.masked() && backend.name == "cpu" && r.fft_wisdom.empty() && ctx.is_root() && !r.quiet)
    std::fprintf(stderr, "tessera: note: masked pairs take double-precision transforms; --fft-wisdom FILE plans them "
                         "by timing once and reuses the plans (a fifth to a quarter less time in the README's runs)\n");
  // --fft-wisdom: before any plan is made (CPU transforms; cuFFT plans its own).
  const FftWisdomUse wisdom = backend.name == "cpu" ? setup_fft_wisdom(comm, r.fft_wisdom,
                                                                       xcorr::fft_size(s.H, s.W, s.h, s.w, opt), s.masked())
                                                    : FftWisdomUse{};
  const JobPart j = job_part(r, s);
  const PartStamp stamp = make_stamp(comm, r, s, opt, j, backend, wisdom);
  const std::vector<OutputDataset> datasets = output_datasets(j.n_pairs, r.subpixel, opt.top_k);
  if (skip_complete_output(comm, r.output, r.resume, r.force, stamp, shapes_of(datasets))) return 0;
  io::OutputFile out(comm, r.output, r.force);  // refused now if it exists, before any work
  for (const OutputDataset& d : datasets) out.create_dataset(d.name, d.type, d.dims);

  const BatchPlan plan = plan_batches(comm, ctx, j, s, opt, budget, threads, backend.name == "cuda");
  note_template_cache(comm, ctx, r, s, j, plan, budget);
  api::PairCorrelator engine(opt, threads, backend.name, backend.device);
  std::vector<mpi::PairRecord> records;
  records.reserve(plan.mine.size());
  Progress progress(comm, j.n_pairs, r.quiet, "xcorr", "pairs");
  for (std::int64_t round = 0; round < plan.n_rounds; ++round) {
    auto t0 = Clock::now();
    const BatchData batch = read_batch(in, r, s, j, plan, round);
    t.read += seconds_since(t0);
    t0 = Clock::now();
    const std::vector<mpi::PairRecord> done = correlate_batch(engine, batch, j, s, plan, opt.top_k, progress);
    records.insert(records.end(), done.begin(), done.end());
    t.correlate += seconds_since(t0);
  }
  progress.finish();

  const api::XcorrResult result = gather_results(comm, ctx, j.n_pairs, opt.top_k, records);
  write_results(out, result, r.subpixel, opt.top_k);
  write_attributes(out, comm, r, ctx, s, opt, plan, threads, backend, t);
  out.write_attribute("/", "fft_planning",
                      wisdom.file.empty() ? std::string("FFTW_ESTIMATE")
                                          : "FFTW wisdom from " + wisdom.file + " (fnv1a64 " + wisdom.digest + ")");
  write_stamp(out, stamp);
  write_complete(out);  // last: an output without it was never finished
  out.commit();
  finish(comm, r, ctx, s, j, result, t);
  return 0;
}

}  // namespace tessera::cli

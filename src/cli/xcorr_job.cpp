#include "xcorr_job.hpp"

#include <malloc.h>
#include <mpi.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "backend.hpp"
#include "fit/batch.hpp"
#include "io/error.hpp"
#include "io/h5_input.hpp"
#include "io/h5_output.hpp"
#include "mpi/decomposition.hpp"
#include "mpi/pairs.hpp"
#include "part.hpp"
#include "part_file.hpp"
#include "progress.hpp"
#include "xcorr/xcorr.hpp"
#include "xcorr_csv.hpp"
#if defined(TESSERA_HAVE_CUDA)
#include "cuda/device_info.hpp"
#include "xcorr_cuda_bridge.hpp"
#endif

namespace tessera::cli {
namespace {

void parse_crop(const std::string& s, xcorr::Options& o) {
  int a = 0, b = 0;
  char tail = 0;
  const int n = std::sscanf(s.c_str(), "%d,%d%c", &a, &b, &tail);
  if (n == 1 && s.find(',') == std::string::npos) b = a;
  else if (n != 2) throw UsageError("--crop must be A,B or A (rows, columns dropped on each side), got '" + s + "'");
  if (a < 0 || b < 0) throw UsageError("--crop must not be negative, got '" + s + "'");
  o.crop_y = a;
  o.crop_x = b;
}

// What one pair's result travels as to rank 0 (all values exact in double).
constexpr int kFields = 8;  // index, y, x, value, sub_y, sub_x, sharpness, peak_ratio

// Checks that a stack of frames is finite; "" or the message for the first bad value.
std::string check_finite(const std::vector<float>& data, std::span<const std::int64_t> frames,
                         std::uint64_t h, std::uint64_t w, const std::string& file,
                         const std::string& dataset, const char* what) {
  const std::uint64_t plane = h * w;
  for (std::size_t f = 0; f < frames.size(); ++f)
    for (std::uint64_t i = 0; i < plane; ++i) {
      const float v = data[f * plane + i];
      if (!std::isfinite(v))
        return io::message(file, dataset,
                           std::string(what) + " " + std::to_string(frames[f]) +
                               " has a non-finite value (" + std::to_string(v) + ") at (" +
                               std::to_string(i / w) + ", " + std::to_string(i % w) + ")");
    }
  return {};
}

}  // namespace

int run_xcorr(const XcorrRequest& r, const RunContext& ctx) {
  const auto t_start = Clock::now();
  MPI_Comm comm = MPI_COMM_WORLD;

  // ---- options that need no file -------------------------------------------------
  xcorr::Options opt;
  parse_crop(r.crop, opt);
  if (!(r.eps >= 0) || !std::isfinite(r.eps)) throw UsageError("--eps must be finite and >= 0");
  opt.eps = r.eps;
  opt.normalize_input = r.normalize_input;
  if (r.mode != "full" && r.mode != "valid") throw UsageError("--mode must be full or valid, got '" + r.mode + "'");
  opt.mode = r.mode == "valid" ? xcorr::Mode::valid : xcorr::Mode::full;
  if (r.exclusion < 0) throw UsageError("--exclusion must be >= 0");
  opt.exclusion = r.exclusion;
  if (r.threads < 0) throw UsageError("--threads must be >= 0");
  if (r.backend != "auto" && r.backend != "cpu" && r.backend != "cuda")
    throw UsageError("--backend must be auto, cpu or cuda, got '" + r.backend + "'");
  const std::uint64_t budget = mpi::parse_size(r.memory_budget);
  const int threads = r.threads > 0 ? r.threads : fit::usable_cores();
  // Keep freed buffers (prepared images, ~30 MB each for 1024^2) in the process
  // for the next image instead of handing them back to the kernel and faulting
  // fresh pages in again: blocks below 32 MiB come from malloc's heaps, which
  // are trimmed only beyond 1 GiB free.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // The CSV table is checked before any work, like the output file.
  if (!r.csv.empty()) io::throw_if_any(comm, ctx.is_root() ? csv_problem(r.csv, r.force) : "");

  // ---- input ---------------------------------------------------------------------
  io::InputFile in(comm, r.input);
  const io::DatasetInfo ii = in.require(r.images, 3, "[n, H, W]");
  const io::DatasetInfo ti = in.require(r.templates, 3, "[k, h, w]");
  const io::DatasetInfo pi = in.describe(r.pairs);
  if (pi.rank() != 2 || (pi.dims.size() == 2 && pi.dims[1] != 2))
    throw UsageError(io::message(r.input, pi.name, "must be [p, 2] (image index, template index), got " +
                                                       std::to_string(pi.rank()) + " dimensions"));
  const std::vector<std::int64_t> all_pairs = in.read_integers(r.pairs, 2, "[p, 2]");
  const std::int64_t n_img = std::int64_t(ii.dims[0]), n_tpl = std::int64_t(ti.dims[0]);
  const std::int64_t total_pairs = std::int64_t(all_pairs.size() / 2);
  for (std::int64_t p = 0; p < total_pairs; ++p) {
    const std::int64_t a = all_pairs[std::size_t(2 * p)], b = all_pairs[std::size_t(2 * p + 1)];
    if (a < 0 || a >= n_img)
      throw UsageError(io::message(r.input, pi.name, "pair " + std::to_string(p) + " names image " +
                                                         std::to_string(a) + ", outside [0, " +
                                                         std::to_string(n_img) + ")"));
    if (b < 0 || b >= n_tpl)
      throw UsageError(io::message(r.input, pi.name, "pair " + std::to_string(p) + " names template " +
                                                         std::to_string(b) + ", outside [0, " +
                                                         std::to_string(n_tpl) + ")"));
  }
  const int H = int(ii.dims[1]), W = int(ii.dims[2]), h = int(ti.dims[1]), w = int(ti.dims[2]);
  if (ii.dims[1] > std::uint64_t(std::numeric_limits<int>::max() / 2) ||
      ii.dims[2] > std::uint64_t(std::numeric_limits<int>::max() / 2))
    throw UsageError(io::message(r.input, ii.name, "images are too large"));
  if (h > H || w > W)
    throw UsageError(r.input + ": templates " + std::to_string(h) + "x" + std::to_string(w) +
                     " are larger than the images " + std::to_string(H) + "x" + std::to_string(W) +
                     " (as normxcorr2, each template must fit inside its image)");
  xcorr::Region region{};
  try {
    region = xcorr::search_region(H, W, h, w, opt);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--crop: ") + e.what());
  }
  // Before the output exists: --backend cuda without a device writes nothing.
  const Backend backend = choose_backend(r.backend, r.device, r.quiet, ctx, comm);

  // ---- the part of the pair list, and what the output will hold -------------------
  // Part I of N covers the pairs split_rows(total, N, I-1); results are per pair,
  // so merged parts equal a whole run bit for bit (part.hpp).
  const Part part = parse_part(r.part);
  const mpi::Range band = part_range(total_pairs, part);
  const std::vector<std::int64_t> pairs(all_pairs.begin() + 2 * band.begin, all_pairs.begin() + 2 * band.end);
  const std::int64_t n_pairs = band.size();  // this job's pairs; index p is pair band.begin + p
  PartStamp stamp;
  stamp.part = part;
  stamp.rows = band;
  stamp.total_rows = total_pairs;
  stamp.datasets = {"/coords", "/peaks", "/quality"};
  if (r.subpixel) stamp.datasets.emplace_back("/subpixel");
  stamp.summed = {"ranks", "seconds_read_correlate", "seconds_total"};
  {
    auto dims = [](const io::DatasetInfo& d) {
      std::string t;
      for (auto v : d.dims) {
        if (!t.empty()) t += 'x';
        t += std::to_string(v);
      }
      return d.name + " " + t + " " + d.type;
    };
    char eps[40];
    *std::to_chars(eps, eps + sizeof eps - 1, opt.eps).ptr = '\0';  // shortest exact form
    stamp.fingerprint_text =
        "command=xcorr\nversion=" + version_line() + "\n" +
        broadcast_from_root(comm, "input=" + file_identity(r.input)) + "\nimages=" + dims(ii) +
        "\ntemplates=" + dims(ti) + "\npairs=" + dims(pi) + "\ncrop=" + std::to_string(opt.crop_y) + "," +
        std::to_string(opt.crop_x) + "\neps=" + eps + "\nnormalize_input=" + std::to_string(opt.normalize_input) +
        "\nmode=" + r.mode + "\nexclusion=" + std::to_string(opt.exclusion) +
        "\nsubpixel=" + std::to_string(r.subpixel) + "\nbackend=" + backend.name + "\n";
  }
  Shapes shapes;
  const auto P = std::uint64_t(n_pairs);
  shapes.emplace_back("/coords", std::vector<std::uint64_t>{P, 2});
  shapes.emplace_back("/peaks", std::vector<std::uint64_t>{P});
  shapes.emplace_back("/quality", std::vector<std::uint64_t>{P, 2});
  if (r.subpixel) shapes.emplace_back("/subpixel", std::vector<std::uint64_t>{P, 2});
  if (skip_complete_output(comm, r.output, r.resume, r.force, stamp, shapes)) return 0;

  // ---- output (refused now if it exists, before any work) -------------------------
  io::OutputFile out(comm, r.output, r.force);
  out.create_dataset("/coords", io::DType::Int64, {P, 2});
  out.create_dataset("/peaks", io::DType::Float32, {P});
  out.create_dataset("/quality", io::DType::Float32, {P, 2});
  if (r.subpixel) out.create_dataset("/subpixel", io::DType::Float64, {P, 2});

  // ---- this rank's pairs, in batches that fit the budget -------------------------------
  std::vector<std::int64_t> image_of(static_cast<std::size_t>(n_pairs));
  for (std::int64_t p = 0; p < n_pairs; ++p) image_of[std::size_t(p)] = pairs[std::size_t(2 * p)];
  // An image costs its transform and prefix sums, about two pairs' worth.
  const auto shares = mpi::assign_pairs(image_of, ctx.size, 2.0);
  const std::vector<std::int64_t>& mine = shares[std::size_t(ctx.rank)];
  const auto [fft_rows, fft_cols] = xcorr::fft_size(H, W, h, w, opt);
  const auto py = std::uint64_t(fft_rows), px = std::uint64_t(fft_cols);
  const std::uint64_t spectrum_bytes = py * (px / 2 + 1) * 8;
  // Per image: pixels (read and prepared), two prefix tables, its spectrum and
  // its window table (one double per searched placement).
  const std::uint64_t image_bytes =
      std::uint64_t(H) * W * 8 + (std::uint64_t(H) + 1) * (std::uint64_t(W) + 1) * 16 + spectrum_bytes +
      std::uint64_t(region.y1 - region.y0 + 1) * std::uint64_t(region.x1 - region.x0 + 1) * 8;
  const std::uint64_t template_bytes = std::uint64_t(h) * w * 8 + (std::uint64_t(h) + 1) * (std::uint64_t(w) + 1) * 8;
  // Per thread: its FFT buffers and, on the CPU, the one image it has prepared
  // (correlate_image_groups); the batch's other images wait as read, 4 bytes a
  // pixel. The GPU path prepares the batch's images all at once, without host
  // tables or spectra (the device builds its own, in groups that fit its
  // memory): the pixels as read and as prepared, 8 bytes a pixel.
  const bool gpu_batch = backend.name == "cuda";
  const std::uint64_t workspace_bytes =
      std::uint64_t(threads) * (py * px * 4 + 2 * spectrum_bytes + (gpu_batch ? 0 : image_bytes));
  const std::uint64_t waiting_bytes = std::uint64_t(H) * W * (gpu_batch ? 8 : 4);
  // Half the budget (after the workspaces) for images, a quarter for template spectra.
  const std::uint64_t free_bytes = budget > workspace_bytes ? budget - workspace_bytes : 0;
  const std::int64_t max_images = std::max<std::int64_t>(1, std::int64_t(free_bytes / 2 / waiting_bytes));
  const auto batches = mpi::batch_by_image(mine, image_of, max_images);
  std::int64_t n_rounds = std::int64_t(batches.size());
  MPI_Allreduce(MPI_IN_PLACE, &n_rounds, 1, MPI_INT64_T, MPI_MAX, comm);

  std::vector<double> results;  // kFields per pair of this rank
  results.reserve(mine.size() * kFields);
  double t_read = 0, t_correlate = 0;
  Progress progress(comm, n_pairs, r.quiet, "xcorr", "pairs");
#if defined(TESSERA_HAVE_CUDA)
  std::unique_ptr<cuda::XcorrCuda> gpu;  // plans and device caches, kept across batches
#endif
  const bool on_gpu = backend.name == "cuda";
  for (std::int64_t round = 0; round < n_rounds; ++round) {
    auto t0 = Clock::now();
    std::span<const std::int64_t> batch;
    if (round < std::int64_t(batches.size()))
      batch = std::span<const std::int64_t>(mine).subspan(
          std::size_t(batches[std::size_t(round)].begin),
          std::size_t(batches[std::size_t(round)].end - batches[std::size_t(round)].begin));
    // The distinct images and templates of the batch, in increasing order.
    std::vector<std::int64_t> imgs, tpls;
    for (std::int64_t p : batch) {
      imgs.push_back(pairs[std::size_t(2 * p)]);
      tpls.push_back(pairs[std::size_t(2 * p + 1)]);
    }
    for (auto* v : {&imgs, &tpls}) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    std::vector<float> img_data(imgs.size() * std::size_t(H) * W),
        tpl_data(tpls.size() * std::size_t(h) * w);
    in.read_frames(r.images, imgs, img_data);
    in.read_frames(r.templates, tpls, tpl_data);
    std::string bad = check_finite(img_data, imgs, H, W, r.input, ii.name, "image");
    if (bad.empty()) bad = check_finite(tpl_data, tpls, h, w, r.input, ti.name, "template");
    io::throw_if_any(comm, bad);
    t_read += seconds_since(t0);
    t0 = Clock::now();

    std::vector<double> batch_results(batch.size() * kFields);
    progress.run([&] {
      if (batch.empty()) return;
      std::vector<std::unique_ptr<xcorr::PreparedImage>> pimg(imgs.size());
      std::vector<std::unique_ptr<xcorr::PreparedTemplate>> ptpl(tpls.size());
      // The GPU transforms on the device: no host spectra.
      const bool cache = !on_gpu && tpls.size() * (spectrum_bytes + template_bytes) <= free_bytes / 4;
      // The CPU prepares each image in the thread that correlates it
      // (correlate_image_groups); the GPU path takes them prepared.
      const std::size_t n_prep = on_gpu ? imgs.size() : 0;
      xcorr::parallel_for(n_prep + tpls.size(), threads, [&](std::size_t i) {
        if (i < n_prep)
          pimg[i] = std::make_unique<xcorr::PreparedImage>(
              xcorr::View{img_data.data() + i * std::size_t(H) * W, H, W}, opt.normalize_input,
              /*host_tables=*/false);  // the device builds its own
        else {
          const std::size_t j = i - n_prep;
          ptpl[j] = std::make_unique<xcorr::PreparedTemplate>(
              xcorr::View{tpl_data.data() + j * std::size_t(h) * w, h, w}, cache);
        }
      });
      std::vector<const xcorr::PreparedImage*> ip;
      std::vector<const xcorr::PreparedTemplate*> tp;
      for (auto& p : pimg) ip.push_back(p.get());
      for (auto& p : ptpl) tp.push_back(p.get());
      std::vector<std::pair<int, int>> local(batch.size());
      for (std::size_t k = 0; k < batch.size(); ++k) {
        const std::int64_t p = batch[k];
        local[k] = {int(std::lower_bound(imgs.begin(), imgs.end(), pairs[std::size_t(2 * p)]) - imgs.begin()),
                    int(std::lower_bound(tpls.begin(), tpls.end(), pairs[std::size_t(2 * p + 1)]) - tpls.begin())};
      }
      std::vector<xcorr::Peak> peaks;
#if defined(TESSERA_HAVE_CUDA)
      if (on_gpu) {
        // The device is per thread, and this is the worker thread.
        if (std::string e = cuda::set_device(backend.device); !e.empty()) throw std::runtime_error(e);
        if (!gpu) gpu = std::make_unique<cuda::XcorrCuda>();
        peaks = correlate_pairs_cuda(*gpu, ip, tp, local, opt, [&](std::int64_t n) { progress.add(n); });
      }
#endif
      if (!on_gpu) {
        std::vector<xcorr::View> views(imgs.size());
        for (std::size_t i = 0; i < imgs.size(); ++i)
          views[i] = xcorr::View{img_data.data() + i * std::size_t(H) * W, H, W};
        peaks = xcorr::correlate_image_groups(views, opt.normalize_input, tp, local, opt, threads,
                                              [&](std::size_t n) { progress.add(std::int64_t(n)); });
      }
      for (std::size_t k = 0; k < batch.size(); ++k) {
        const xcorr::Peak& q = peaks[k];
        double* f = batch_results.data() + k * kFields;
        f[0] = double(batch[k]);
        f[1] = q.y;
        f[2] = q.x;
        f[3] = q.value;
        f[4] = q.sub_y;
        f[5] = q.sub_x;
        f[6] = q.sharpness;
        f[7] = q.peak_ratio;
      }
    });
    results.insert(results.end(), batch_results.begin(), batch_results.end());
    t_correlate += seconds_since(t0);
  }
  progress.finish();

  // ---- gather to rank 0, in the order of the pair list -----------------------------
  int my_count = int(results.size());
  std::vector<int> counts(std::size_t(ctx.size)), displs(std::size_t(ctx.size));
  MPI_Gather(&my_count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm);
  std::vector<double> all;
  if (ctx.is_root()) {
    for (int i = 1; i < ctx.size; ++i) displs[std::size_t(i)] = displs[std::size_t(i - 1)] + counts[std::size_t(i - 1)];
    all.resize(std::size_t(n_pairs) * kFields);
  }
  MPI_Gatherv(results.data(), my_count, MPI_DOUBLE, all.data(), counts.data(), displs.data(),
              MPI_DOUBLE, 0, comm);
  std::vector<std::int64_t> coords;
  std::vector<float> peaks, quality;
  std::vector<double> sub;
  if (ctx.is_root()) {
    coords.assign(std::size_t(n_pairs) * 2, -1);
    peaks.assign(std::size_t(n_pairs), std::numeric_limits<float>::quiet_NaN());
    quality.assign(std::size_t(n_pairs) * 2, std::numeric_limits<float>::quiet_NaN());
    sub.assign(std::size_t(n_pairs) * 2, std::numeric_limits<double>::quiet_NaN());
    std::vector<char> seen(std::size_t(n_pairs), 0);
    for (std::int64_t k = 0; k < n_pairs; ++k) {
      const double* f = all.data() + std::size_t(k) * kFields;
      const auto p = std::size_t(f[0]);
      seen[p] = 1;
      coords[2 * p] = std::int64_t(f[1]);
      coords[2 * p + 1] = std::int64_t(f[2]);
      peaks[p] = float(f[3]);
      sub[2 * p] = f[4];
      sub[2 * p + 1] = f[5];
      quality[2 * p] = float(f[6]);
      quality[2 * p + 1] = float(f[7]);
    }
    if (std::count(seen.begin(), seen.end(), 0) != 0)
      throw std::logic_error("xcorr: a pair was not computed by any rank");
  }
  out.write_all<std::int64_t>("/coords", coords);
  out.write_all<float>("/peaks", peaks);
  out.write_all<float>("/quality", quality);
  if (r.subpixel) out.write_all<double>("/subpixel", sub);

  // ---- attributes (same values on every rank) -------------------------------------
  double times[2] = {t_read, t_correlate}, max_times[2];
  MPI_Allreduce(times, max_times, 2, MPI_DOUBLE, MPI_MAX, comm);
  out.write_attribute("/", "input", r.input);
  out.write_attribute("/", "images", ii.name);
  out.write_attribute("/", "templates", ti.name);
  out.write_attribute("/", "pairs", pi.name);
  out.write_attribute("/", "image_shape", std::vector<double>{double(n_img), double(H), double(W)});
  out.write_attribute("/", "template_shape", std::vector<double>{double(n_tpl), double(h), double(w)});
  out.write_attribute("/", "mode", r.mode);
  out.write_attribute("/", "crop", std::vector<double>{double(opt.crop_y), double(opt.crop_x)});
  out.write_attribute("/", "search_region",
                      std::vector<double>{double(region.y0), double(region.y1), double(region.x0), double(region.x1)});
  out.write_attribute("/", "eps", opt.eps);
  out.write_attribute("/", "normalize_input", std::int64_t(opt.normalize_input));
  out.write_attribute("/", "exclusion", std::int64_t(opt.exclusion));
  out.write_attribute("/", "fft_size", std::vector<double>{double(py), double(px)});
  out.write_attribute("/coords", "definition",
                      "(y, x) in the full (H+h-1) x (W+w-1) map: the template's top-left corner "
                      "lies at image position (y-h+1, x-w+1)");
  out.write_attribute("/quality", "columns",
                      std::vector<std::string>{"sharpness", "peak_ratio"});
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
  out.write_attribute("/", "seconds_read_correlate", std::vector<double>(max_times, max_times + 2));
  out.write_attribute("/", "seconds_total", seconds_since(t_start));
  write_stamp(out, stamp);
  write_complete(out);  // last: an output without it was never finished
  out.commit();

  // ---- the CSV table, after the HDF5 file is complete --------------------------------
  std::string csv_error;
  if (ctx.is_root() && !r.csv.empty())
    csv_error = write_xcorr_csv(r.csv, band.begin, pairs, coords, peaks, quality,
                                r.subpixel ? sub : std::vector<double>{});
  io::throw_if_any(comm, csv_error);
  if (ctx.is_root() && !r.quiet)
    std::fprintf(stderr, "tessera: wrote %s: %s%lld pairs (%lld images x %dx%d, %lld templates x %dx%d) in %.2f s\n",
                 r.output.c_str(),
                 part.count == 1 ? "" : ("part " + part_name(part) + ", pairs " + std::to_string(band.begin) +
                                         ":" + std::to_string(band.end) + " of ").c_str(),
                 (long long)(part.count == 1 ? n_pairs : total_pairs), (long long)n_img, H, W, (long long)n_tpl, h, w,
                 seconds_since(t_start));
  return 0;
}

}  // namespace tessera::cli

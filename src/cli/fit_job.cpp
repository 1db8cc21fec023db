#include "fit_job.hpp"

#include <mpi.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <stdexcept>

#include "fit/batch.hpp"
#include "fit/guess.hpp"
#include "fit/simulate.hpp"
#include "io/error.hpp"
#include "io/h5_input.hpp"
#include "io/h5_output.hpp"
#include "mpi/decomposition.hpp"
#include "mpi/device_binding.hpp"
#include "backend.hpp"
#include "part_file.hpp"
#include "progress.hpp"

#if defined(TESSERA_HAVE_CUDA)
#include "cuda/device_info.hpp"
#include "cuda_bridge.hpp"
#endif

namespace tessera::cli {

namespace {

// Region of the input and the binned output grid.
struct Geometry {
  std::int64_t n_sweep = 0, ny_in = 0, nx_in = 0;
  std::int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  int bin = 1;
  std::int64_t ny = 0, nx = 0;  // output
};

Geometry make_geometry(const std::vector<std::uint64_t>& dims, const std::string& roi, int bin) {
  Geometry g;
  g.n_sweep = std::int64_t(dims[0]);
  g.ny_in = std::int64_t(dims[1]);
  g.nx_in = std::int64_t(dims[2]);
  g.y1 = g.ny_in;
  g.x1 = g.nx_in;
  if (!roi.empty()) {
    long long a, b, c, d;
    char tail;
    if (std::sscanf(roi.c_str(), "%lld:%lld,%lld:%lld%c", &a, &b, &c, &d, &tail) != 4)
      throw UsageError("--roi must look like y0:y1,x0:x1, got '" + roi + "'");
    if (a < 0 || c < 0 || b > g.ny_in || d > g.nx_in || a >= b || c >= d)
      throw UsageError("--roi " + roi + " is empty or outside the image (" + std::to_string(g.ny_in) +
                       " x " + std::to_string(g.nx_in) + ")");
    g.y0 = a, g.y1 = b, g.x0 = c, g.x1 = d;
  }
  if (bin < 1) throw UsageError("--bin must be at least 1");
  g.bin = bin;
  g.ny = (g.y1 - g.y0) / bin;
  g.nx = (g.x1 - g.x0) / bin;
  if (g.ny < 1 || g.nx < 1) throw UsageError("--bin " + std::to_string(bin) + " is larger than the region");
  return g;
}

// Parses NAME=VALUE / NAME=LO:HI lists into constraints and fixed values.
void parse_constraints(const FitRequest& r, const std::vector<std::string>& names,
                       fit::FitOptions& o, std::vector<double>& fixed_values) {
  o.constraints.assign(names.size(), {});
  fixed_values.assign(names.size(), std::numeric_limits<double>::quiet_NaN());
  auto index = [&](const std::string& item, const std::string& opt) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw UsageError(opt + " " + item + ": expected NAME=...");
    const std::string name = item.substr(0, eq);
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      throw UsageError(opt + ": unknown parameter '" + name + "' (this model has " + all + ")");
    }
    return std::pair{size_t(it - names.begin()), item.substr(eq + 1)};
  };
  auto number = [](const std::string& s, const std::string& what) {
    try {
      size_t used = 0;
      const double v = std::stod(s, &used);
      if (used != s.size()) throw std::invalid_argument(s);
      return v;
    } catch (const std::exception&) {
      throw UsageError(what + ": '" + s + "' is not a number");
    }
  };
  for (const auto& item : r.fix) {
    const auto [j, v] = index(item, "--fix");
    o.constraints[j].fixed = true;
    fixed_values[j] = number(v, "--fix " + item);
    if (!std::isfinite(fixed_values[j])) throw UsageError("--fix " + item + ": value must be finite");
  }
  for (const auto& item : r.bound) {
    const auto [j, v] = index(item, "--bound");
    const auto colon = v.find(':');
    if (colon == std::string::npos) throw UsageError("--bound " + item + ": expected NAME=LO:HI");
    o.constraints[j].lo = number(v.substr(0, colon), "--bound " + item);
    o.constraints[j].hi = number(v.substr(colon + 1), "--bound " + item);
  }
}

// Reads the output rows [r0, r1) of this rank (all ranks call it together) and
// returns them pixel-major [pix][n_sweep], binned and normalised (sig/ref).
// A spectrum that is all zero (a dead pixel) becomes NaN, hence state 3.
std::vector<float> read_rows(io::InputFile& in, const FitRequest& r, const Geometry& g,
                             std::int64_t r0, std::int64_t r1) {
  const std::int64_t rows = r1 - r0, n = g.n_sweep;
  io::Block block{g.y0 + r0 * g.bin, g.y0 + r1 * g.bin, g.x0, g.x0 + g.nx * g.bin};
  const bool sigref = !r.sig.empty();
  std::vector<float> a(size_t(n * block.pixels())), b;
  in.read_slab(sigref ? r.sig : r.data, block, a);
  if (sigref) {
    b.resize(a.size());
    in.read_slab(r.ref, block, b);
  }
  const std::int64_t cols_in = block.cols(), npix = rows * g.nx;
  std::vector<float> y(size_t(npix * n));
  const int B = g.bin;
  for (std::int64_t oy = 0; oy < rows; ++oy)
    for (std::int64_t ox = 0; ox < g.nx; ++ox) {
      float* out = y.data() + (oy * g.nx + ox) * n;
      bool all_zero = true;
      for (std::int64_t i = 0; i < n; ++i) {
        double s = 0, t = 0;
        for (int dy = 0; dy < B; ++dy)
          for (int dx = 0; dx < B; ++dx) {
            const size_t at = size_t((i * block.rows() + oy * B + dy) * cols_in + ox * B + dx);
            s += a[at];
            if (sigref) t += b[at];
          }
        const double v = sigref ? s / t : s / (B * B);
        out[i] = float(v);
        all_zero = all_zero && s == 0;
      }
      if (all_zero) std::fill_n(out, n, std::numeric_limits<float>::quiet_NaN());
    }
  return y;
}

// What the fit's results depend on, one item per line (see part.hpp): the
// input's identity and every option that changes a bit of the output, but not
// ranks, threads, chunks, the part or the output's name. Rank 0 looks at the
// files; every rank gets the same text.
std::string fingerprint_text(MPI_Comm comm, const FitRequest& r, const io::DatasetInfo& cube,
                             const Geometry& g, const std::string& backend) {
  auto files = broadcast_from_root(
      comm, "input=" + file_identity(r.input) +
                (r.guess == "auto" ? "\nguess=auto" : "\nguess=" + file_identity(r.guess)));
  std::string t = "command=fit\nversion=" + version_line() + "\n" + files + "\n";
  std::string dims;
  for (auto d : cube.dims) dims += (dims.empty() ? "" : "x") + std::to_string(d);
  t += "cube=" + cube.name + " " + dims + " " + cube.type + "\n";
  t += "data=" + r.data + "\nsig=" + r.sig + "\nref=" + r.ref + "\nsweep=" + r.sweep + "\nmask=" + r.mask + "\n";
  t += "model=" + r.model + "\npeaks=" + std::to_string(r.peaks) + "\nbackground=" + r.background + "\n";
  t += "roi=" + std::to_string(g.y0) + ":" + std::to_string(g.y1) + "," + std::to_string(g.x0) + ":" +
       std::to_string(g.x1) + "\nbin=" + std::to_string(g.bin) + "\n";
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

}  // namespace

int run_fit(const FitRequest& r, const RunContext& ctx) {
  const auto t_start = Clock::now();
  MPI_Comm comm = MPI_COMM_WORLD;
  // ---- options that need no file -------------------------------------------------
  if (r.backend != "auto" && r.backend != "cpu" && r.backend != "cuda")
    throw UsageError("--backend must be auto, cpu or cuda, got '" + r.backend + "'");
  if (r.gpu_kernel != "auto" && r.gpu_kernel != "thread" && r.gpu_kernel != "warp")
    throw UsageError("--gpu-kernel must be auto, thread or warp, got '" + r.gpu_kernel + "'");
  if (r.estimator != "lse" && r.estimator != "mle")
    throw UsageError("--estimator must be lse or mle, got '" + r.estimator + "'");
  if (r.sig.empty() != r.ref.empty()) throw UsageError("--sig and --ref go together");
  const std::uint64_t budget = mpi::parse_size(r.memory_budget);
  const Part part = parse_part(r.part);

  // ---- input -------------------------------------------------------------------
  io::InputFile in(comm, r.input);
  const std::string cube = r.sig.empty() ? r.data : r.sig;
  const io::DatasetInfo info = in.require(cube, 3, "[n_sweep, ny, nx]");
  if (!r.sig.empty()) {
    const io::DatasetInfo ref = in.require(r.ref, 3, "[n_sweep, ny, nx]");
    if (ref.dims != info.dims) throw UsageError(r.input + ": " + r.ref + " and " + r.sig + " differ in shape");
  }
  const std::vector<double> sweep_d = in.read_vector(r.sweep);
  if (sweep_d.size() != info.dims[0])
    throw UsageError(r.input + ": " + r.sweep + " has " + std::to_string(sweep_d.size()) +
                     " values but " + cube + " has " + std::to_string(info.dims[0]) + " sweep points");
  for (double v : sweep_d)
    if (!std::isfinite(v)) throw UsageError(r.input + ": " + r.sweep + " holds a non-finite value");
  const std::vector<float> x(sweep_d.begin(), sweep_d.end());
  // Units for the output's attributes, where the input says them.
  const std::string x_unit =
      in.has_attribute("/", "x_unit") ? in.read_attribute_string("/", "x_unit") : "sweep unit";
  const std::string y_unit = !r.sig.empty() ? "sig/ref"
                             : in.has_attribute("/", "y_unit") ? in.read_attribute_string("/", "y_unit")
                                                               : "data unit";
  const Geometry g = make_geometry(info.dims, r.roi, r.bin);

  const fit::ModelSpec spec = fit::make_model_spec(r.model, r.peaks, r.background, x);
  const auto names = spec.param_names();
  const int P = spec.n_params();
  fit::FitOptions opt;
  opt.estimator = r.estimator == "mle" ? fit::Estimator::mle : fit::Estimator::lse;
  opt.max_iter = r.max_iter;
  opt.tol = r.tol;
  opt.threads = r.threads;
  std::vector<double> fixed_values;
  parse_constraints(r, names, opt, fixed_values);
  if (std::string msg = opt.validate(spec, int(g.n_sweep)); !msg.empty()) throw UsageError(msg);
  const Backend backend = choose_backend(r.backend, r.device, r.quiet, ctx, comm);

  // ---- the part of the output rows, and what the output will hold ---------------------
  // B maps for Lorentzian peak pairs; pair k is peaks k and N-1-k, at parameter
  // first_pos + 3 k (offset, [slope], then pos, fwhm, amp per peak).
  const int n_pairs =
      spec.kind == fit::ModelKind::lorentzian && spec.n_peaks % 2 == 0 ? spec.n_peaks / 2 : 0;
  const int first_pos = spec.linear_background ? 2 : 1;
  const mpi::Range band = part_range(g.ny, part);  // this job's output rows
  PartStamp stamp;
  stamp.part = part;
  stamp.rows = band;
  stamp.total_rows = g.ny;
  for (const auto& n : names) stamp.datasets.push_back("/params/" + n);
  for (const auto& n : names) stamp.datasets.push_back("/sigma/" + n);
  for (const char* n : {"/chi2", "/state", "/iterations"}) stamp.datasets.emplace_back(n);
  for (int k = 0; k < n_pairs; ++k) stamp.datasets.push_back("/derived/bnv" + std::to_string(k));
  stamp.summed = {"ranks", "seconds_read_fit_write", "seconds_total", "state_counts"};
  stamp.fingerprint_text = fingerprint_text(comm, r, info, g, backend.name);
  const std::vector<std::uint64_t> dims{std::uint64_t(band.size()), std::uint64_t(g.nx)};
  Shapes shapes{{"/sweep", {std::uint64_t(g.n_sweep)}}};
  for (const auto& d : stamp.datasets) shapes.emplace_back(d, dims);
  if (skip_complete_output(comm, r.output, r.resume, r.force, stamp, shapes)) return 0;

  // ---- decomposition -------------------------------------------------------------
  // The starting values need the mean spectrum of the whole image, so every part
  // reads every row once for it (split over the ranks); the fit then covers the
  // part's rows, split over the ranks again.
  const mpi::Range mine = mpi::split_rows(g.ny, ctx.size, ctx.rank);
  const mpi::Range fit_share = mpi::split_rows(band.size(), ctx.size, ctx.rank);
  const mpi::Range fit_rows{band.begin + fit_share.begin, band.begin + fit_share.end};
  const std::uint64_t bytes_per_row =
      std::uint64_t(g.n_sweep) * g.nx * g.bin * g.bin * sizeof(float) * (r.sig.empty() ? 2 : 3) +
      std::uint64_t(g.nx) * (g.n_sweep + 3 * P) * sizeof(float);
  const mpi::ChunkPlan plan = mpi::plan_chunks(g.ny, ctx.size, budget, bytes_per_row);
  const mpi::ChunkPlan fit_plan = mpi::plan_chunks(band.size(), ctx.size, budget, bytes_per_row);
  // With the whole output and one chunk per rank, the mean pass keeps what it
  // read for the fit pass, so the cube is read once.
  const bool keep = part.count == 1 && plan.n_chunks == 1;

  // ---- output ------------------------------------------------------------------
  io::OutputFile out(comm, r.output, r.force);
  for (const auto& d : stamp.datasets)
    out.create_dataset(d, d == "/state" || d == "/iterations" ? io::DType::Int32 : io::DType::Float32, dims);
  out.create_dataset("/sweep", io::DType::Float64, {std::uint64_t(g.n_sweep)});
  out.write_all<double>("/sweep", sweep_d);

  // ---- starting values: the mean spectrum of the whole image (auto) ------------------
  const bool from_file = r.guess != "auto";
  std::vector<double> global;
  std::vector<float> kept;  // see `keep`
  if (!from_file) {
    std::vector<double> sums(size_t(mine.size() * g.n_sweep));
    std::vector<std::int64_t> counts(size_t(mine.size()));
    for (std::int64_t k = 0; k < plan.n_chunks; ++k) {
      const mpi::Range c = mpi::chunk_range(mine, plan.n_chunks, k);
      auto y = read_rows(in, r, g, c.begin, c.end);
      if (!c.empty())
        fit::spectrum_row_sums(y.data(), int(c.size()), int(g.nx), int(g.n_sweep),
                               sums.data() + (c.begin - mine.begin) * g.n_sweep,
                               counts.data() + (c.begin - mine.begin));
      if (keep) kept = std::move(y);
    }
    // Every rank gets every row's sums, in row order: the mean has the same
    // bits whatever the number of ranks.
    std::vector<int> rc(ctx.size), rd(ctx.size), sc(ctx.size), sd(ctx.size);
    for (int q = 0; q < ctx.size; ++q) {
      const mpi::Range rq = mpi::split_rows(g.ny, ctx.size, q);
      rc[q] = int(rq.size()), rd[q] = int(rq.begin);
      sc[q] = int(rq.size() * g.n_sweep), sd[q] = int(rq.begin * g.n_sweep);
    }
    std::vector<double> all_sums(size_t(g.ny * g.n_sweep));
    std::vector<std::int64_t> all_counts(size_t(g.ny));
    MPI_Allgatherv(sums.data(), sc[ctx.rank], MPI_DOUBLE, all_sums.data(), sc.data(), sd.data(),
                   MPI_DOUBLE, comm);
    MPI_Allgatherv(counts.data(), rc[ctx.rank], MPI_INT64_T, all_counts.data(), rc.data(), rd.data(),
                   MPI_INT64_T, comm);
    const auto mean = fit::mean_from_row_sums(all_sums, all_counts, int(g.n_sweep));
    if (!std::isfinite(mean[0]))
      throw UsageError(r.input + ": " + cube + " has no pixel with finite, non-zero data");
    fit::FitOptions one = opt;
    one.threads = 1;
    global = fit::spectrum_start(spec, x, mean, one, fixed_values);  // same on every rank
  }
  std::unique_ptr<io::InputFile> previous;
  if (from_file) {
    previous = std::make_unique<io::InputFile>(comm, r.guess);
    for (const auto& n : names) {
      const auto d = previous->require("/params/" + n, 2, "[ny, nx]");
      if (std::int64_t(d.dims[0]) != g.ny || std::int64_t(d.dims[1]) != g.nx)
        throw UsageError(r.guess + ": /params/" + n + " is " + std::to_string(d.dims[0]) + " x " +
                         std::to_string(d.dims[1]) + ", the fit is " + std::to_string(g.ny) + " x " +
                         std::to_string(g.nx));
    }
  }
  if (!r.mask.empty()) {
    const auto d = in.require(r.mask, 2, "[ny, nx]");
    if (std::int64_t(d.dims[0]) != g.ny_in || std::int64_t(d.dims[1]) != g.nx_in)
      throw UsageError(r.input + ": " + r.mask + " must be " + std::to_string(g.ny_in) + " x " +
                       std::to_string(g.nx_in) + " like the image");
  }

  // ---- fit, chunk by chunk -------------------------------------------------------
  Progress progress(comm, band.size() * g.nx, r.quiet, "fit");
  opt.progress = [&progress](std::int64_t n) { progress.add(n); };
  double t_read = 0, t_fit = 0, t_write = 0;
  std::int64_t counts[6] = {0, 0, 0, 0, 0, 0};
#if defined(TESSERA_HAVE_CUDA)
  // Device buffers, pinned staging and streams, kept across the chunks.
  std::unique_ptr<cuda::FitCudaSession> gpu_session;
#endif
  for (std::int64_t k = 0; k < fit_plan.n_chunks; ++k) {
    const mpi::Range c = mpi::chunk_range(fit_rows, fit_plan.n_chunks, k);
    const std::int64_t w0 = c.begin - band.begin, w1 = c.end - band.begin;  // rows in the output
    const std::int64_t npix = c.size() * g.nx;
    auto t0 = Clock::now();
    // Same decision on every rank, so the collective reads still match.
    const auto y = keep && !from_file ? std::move(kept) : read_rows(in, r, g, c.begin, c.end);
    std::vector<float> start(static_cast<size_t>(npix * P));
    if (from_file) {
      io::Block b{c.begin, c.end, 0, g.nx};
      std::vector<float> map(static_cast<size_t>(npix));
      for (int j = 0; j < P; ++j) {
        previous->read_block("/params/" + names[j], b, map);
        for (std::int64_t p = 0; p < npix; ++p)
          start[size_t(p * P + j)] = map[p];  // NaN where that fit failed: state 5, bad start
      }
    }
    std::vector<std::uint8_t> mask;
    if (!r.mask.empty()) {
      // A binned pixel is masked when any of its input pixels is.
      io::Block b{g.y0 + c.begin * g.bin, g.y0 + c.end * g.bin, g.x0, g.x0 + g.nx * g.bin};
      std::vector<float> m(size_t(b.pixels()));
      in.read_block(r.mask, b, m);
      mask.assign(size_t(npix), 0);
      for (std::int64_t oy = 0; oy < c.size(); ++oy)
        for (std::int64_t ox = 0; ox < g.nx; ++ox)
          for (int dy = 0; dy < g.bin; ++dy)
            for (int dx = 0; dx < g.bin; ++dx)
              if (m[size_t((oy * g.bin + dy) * b.cols() + ox * g.bin + dx)] != 0) mask[size_t(oy * g.nx + ox)] = 1;
    }
    t_read += seconds_since(t0);
    t0 = Clock::now();
    fit::FitResults res;
    progress.run([&] {
      if (npix == 0) {
        res = fit::fit_batch(spec, fit::FitBatch{x, nullptr, nullptr, nullptr, nullptr, 0}, opt);
        return;
      }
      if (!from_file)
        fit::cube_starts(spec, x, y.data(), int(c.size()), int(g.nx), global, opt, start.data());
      for (int j = 0; j < P; ++j)
        if (opt.constraints[j].fixed)
          for (std::int64_t p = 0; p < npix; ++p) start[size_t(p * P + j)] = float(fixed_values[j]);
      fit::FitBatch batch{x, y.data(), nullptr, mask.empty() ? nullptr : mask.data(), start.data(), npix};
#if defined(TESSERA_HAVE_CUDA)
      if (backend.name == "cuda") {
        // The device is per thread, and this is the worker thread.
        if (std::string e = cuda::set_device(backend.device); !e.empty()) throw std::runtime_error(e);
        res.n_params = P;
        res.params.resize(size_t(npix * P));
        res.sigma.resize(size_t(npix * P));
        res.chi2.resize(size_t(npix));
        res.state.resize(size_t(npix));
        res.iterations.resize(size_t(npix));
        cuda::FitInputDesc gin;
        gin.x = x.data();
        gin.n_points = int(g.n_sweep);
        gin.y = y.data();
        gin.mask = batch.mask;
        gin.start = start.data();
        gin.n_pix = npix;
        const cuda::FitOutputDesc gout{res.params.data(), res.sigma.data(), res.chi2.data(),
                                       res.state.data(), res.iterations.data()};
        cuda::FitConfigDesc config = to_cuda(spec, opt);
        config.kernel = to_cuda_kernel(r.gpu_kernel);
        if (!gpu_session) gpu_session = std::make_unique<cuda::FitCudaSession>();
        gpu_session->fit(to_cuda(spec), config, gin, gout);
        progress.add(npix);
        return;
      }
#endif
      res = fit::fit_batch(spec, batch, opt);
    });
    t_fit += seconds_since(t0);
    t0 = Clock::now();
    std::vector<float> map(static_cast<size_t>(npix));
    for (int j = 0; j < P; ++j) {
      for (std::int64_t p = 0; p < npix; ++p) map[p] = res.params[size_t(p * P + j)];
      out.write_rows<float>("/params/" + names[j], w0, w1, map);
      for (std::int64_t p = 0; p < npix; ++p) map[p] = res.sigma[size_t(p * P + j)];
      out.write_rows<float>("/sigma/" + names[j], w0, w1, map);
    }
    for (int kp = 0; kp < n_pairs; ++kp) {
      const int lo = first_pos + 3 * kp, hi = first_pos + 3 * (spec.n_peaks - 1 - kp);
      for (std::int64_t p = 0; p < npix; ++p)
        map[p] = float((res.params[size_t(p * P + hi)] - res.params[size_t(p * P + lo)]) /
                       (2 * fit::nv_gamma_mhz_per_mt));
      out.write_rows<float>("/derived/bnv" + std::to_string(kp), w0, w1, map);
    }
    out.write_rows<float>("/chi2", w0, w1, res.chi2);
    out.write_rows<std::int32_t>("/state", w0, w1, res.state);
    out.write_rows<std::int32_t>("/iterations", w0, w1, res.iterations);
    for (std::int32_t s : res.state)
      if (s >= 0 && s < 6) ++counts[s];
    t_write += seconds_since(t0);
  }
  progress.finish();
#if defined(TESSERA_HAVE_CUDA)
  if (gpu_session) {
    // Freed with the device current, as in the worker threads that used it.
    (void)cuda::set_device(backend.device);
    gpu_session.reset();
  }
#endif

  // ---- attributes (same values on every rank) ---------------------------------------
  std::int64_t all_counts[6];
  MPI_Allreduce(counts, all_counts, 6, MPI_INT64_T, MPI_SUM, comm);
  double times[3] = {t_read, t_fit, t_write}, max_times[3];
  MPI_Allreduce(times, max_times, 3, MPI_DOUBLE, MPI_MAX, comm);
  out.write_attribute("/", "model", spec.model_name());
  out.write_attribute("/", "peaks", std::int64_t(spec.is_peak_model() ? spec.n_peaks : 0));
  out.write_attribute("/", "background", spec.linear_background ? "linear" : "constant");
  out.write_attribute("/", "x_mid", spec.x_mid);
  out.write_attribute("/", "param_names", names);
  out.write_attribute("/", "param_units", spec.param_units(x_unit, y_unit));
  out.write_attribute("/", "estimator", r.estimator);
  out.write_attribute("/", "tol", r.tol);
  out.write_attribute("/", "max_iter", std::int64_t(r.max_iter));
  out.write_attribute("/", "input", r.input);
  out.write_attribute("/", "data", cube);
  out.write_attribute("/", "roi", std::vector<double>{double(g.y0), double(g.y1), double(g.x0), double(g.x1)});
  out.write_attribute("/", "bin", std::int64_t(g.bin));
  out.write_attribute("/", "guess", r.guess);
  out.write_attribute("/", "command_line", r.command_line);
  out.write_attribute("/", "version", version_line());
  out.write_attribute("/", "ranks", std::int64_t(ctx.size));
  out.write_attribute("/", "backend", backend.name);
#if defined(TESSERA_HAVE_CUDA)
  if (backend.name == "cuda")
    out.write_attribute("/", "gpu_kernel",
                        std::string(cuda::use_warp_per_fit(to_cuda_kernel(r.gpu_kernel), P)
                                        ? "warp per fit"
                                        : "thread per fit"));
#endif
  out.write_attribute("/", "state_names",
                      std::vector<std::string>{"converged", "iteration_limit", "singular",
                                               "nonfinite_input", "masked", "bad_start"});
  out.write_attribute("/", "state_counts", std::vector<double>(all_counts, all_counts + 6));
  out.write_attribute("/", "seconds_read_fit_write", std::vector<double>(max_times, max_times + 3));
  out.write_attribute("/", "seconds_total", seconds_since(t_start));
  if (n_pairs > 0)
    out.write_attribute("/derived", "bnv_definition",
                        "bnv{k} = (pos{N-1-k} - pos{k}) / (2 * 28.024 MHz/mT), in mT: pair k of "
                        "peaks numbered by position from the outside in");
  write_stamp(out, stamp);
  write_complete(out);  // last: an output without it was never finished
  out.commit();
  if (ctx.is_root() && !r.quiet)
    std::fprintf(stderr,
                 "tessera: wrote %s (%s%lld x %lld): %lld converged, %lld iteration limit, %lld singular, "
                 "%lld non-finite input, %lld masked, %lld bad start\n",
                 r.output.c_str(),
                 part.count == 1 ? "" : ("part " + part_name(part) + ", rows " + std::to_string(band.begin) +
                                         ":" + std::to_string(band.end) + " of ").c_str(),
                 (long long)g.ny, (long long)g.nx, (long long)all_counts[0],
                 (long long)all_counts[1], (long long)all_counts[2], (long long)all_counts[3],
                 (long long)all_counts[4], (long long)all_counts[5]);
  return 0;
}

}  // namespace tessera::cli

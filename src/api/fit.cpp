#include "fit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

#include "fit/guess.hpp"
#include "fit/model_file.hpp"
#include "fit/user_model.hpp"

#if defined(TESSERA_HAVE_CUDA)
#include "api/fit_cuda_bridge.hpp"
#include "cuda/device_info.hpp"
#include "cuda/user_kernels.hpp"
#endif

namespace tessera::api {

namespace {

std::string one_of(const std::string& option, const std::string& value,
                   std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (value == a) return {};
  std::string list;
  std::size_t i = 0;
  for (const char* a : allowed) {
    list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ");
    list += a;
    ++i;
  }
  return option + " must be " + list + ", got '" + value + "'";
}

}  // namespace

bool FitOptions::IsValid(std::string* why) const {
  std::string m = one_of("--backend", backend, {"auto", "cpu", "cuda"});
  if (m.empty()) m = one_of("--gpu-kernel", gpu_kernel, {"auto", "thread", "warp"});
  if (m.empty()) m = one_of("--estimator", estimator, {"lse", "mle"});
  const bool own = !expr.empty() || !model_file.empty() || !is_builtin_model(model);
  if (m.empty() && !own) {
    try {
      (void)fit::make_model_spec(model, peaks, background, {});
    } catch (const std::invalid_argument& e) {
      m = e.what();
    }
  }
  if (m.empty() && !own && (!params.empty() || !consts.empty() || !start.empty() || !derive.empty()))
    m = "--params, --const, --start and --derive describe a model of your own: give it with --expr, "
        "--model-file or a shipped --model";
  if (m.empty() && !expr.empty() && !model_file.empty()) m = "--expr and --model-file: give one model";
  if (m.empty() && !model_file.empty() && !params.empty())
    m = "--params: a model file lists its own parameters";
  if (m.empty() && bin < 1) m = "--bin must be at least 1";
  if (m.empty() && max_iter < 1) m = "--max-iter must be at least 1";
  if (m.empty() && (!(tol > 0) || !std::isfinite(tol) || tol >= 1)) m = "--tol must be in (0, 1)";
  if (m.empty() && threads < 0) m = "--threads must be 0 (all cores) or positive";
  for (const auto& h : hold)
    for (const auto& f : fix)
      if (m.empty() && h == f.first) m = "hold " + h + ": the parameter is also fixed (--fix): give one";
  if (why) *why = m;
  return m.empty();
}

const std::vector<float>& FitResult::param(const std::string& name) const {
  const auto it = std::find(param_names.begin(), param_names.end(), name);
  if (it == param_names.end()) throw std::out_of_range("no parameter '" + name + "' in this fit");
  return params[std::size_t(it - param_names.begin())];
}

bool is_builtin_model(const std::string& name) {
  return name == "lorentzian" || name == "gaussian" || name == "stretched_exp" || name == "damped_cosine";
}

namespace {

// A model file of the options: --model-file, or a shipped model's name.
fit::UserModelDescription model_file_of(const FitOptions& o) {
  if (!o.model_file.empty()) return fit::load_model_file(o.model_file);
  const std::string path = fit::find_model(o.model);
  if (path.empty()) {
    std::string shipped;
    for (const auto& n : fit::shipped_models()) shipped += (shipped.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown model '" + o.model +
                                "' (choose lorentzian, gaussian, stretched_exp, damped_cosine" +
                                (shipped.empty() ? "" : "; shipped: " + shipped) + ")");
  }
  return fit::load_model_file(path);
}

}  // namespace

fit::UserModelDescription describe_user_model(const FitOptions& o) {
  fit::UserModelDescription d;
  if (!o.expr.empty()) {
    d.source = {o.expr, o.params, o.consts};
    d.start.assign(o.params.size(), {fit::StartRule::Kind::value, NAN});
  } else {
    d = model_file_of(o);
    for (const auto& [name, v] : o.consts) {
      auto& consts = d.source.consts;
      const auto it = std::find_if(consts.begin(), consts.end(), [&](const auto& c) { return c.first == name; });
      if (it == consts.end()) consts.emplace_back(name, v);
      else it->second = v;
    }
  }
  const auto& names = d.source.params;
  for (const auto& [name, v] : o.start) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) throw std::invalid_argument("--start: '" + name + "' is not a parameter of the model");
    d.start[std::size_t(it - names.begin())] = {fit::StartRule::Kind::value, v};
  }
  for (std::size_t j = 0; j < names.size(); ++j)
    if (d.start[j].kind == fit::StartRule::Kind::value && std::isnan(d.start[j].value))
      throw std::invalid_argument("--start: no value for '" + names[j] + "'");
  for (const auto& [name, text] : o.derive) {
    d.source.derives.emplace_back(name, text);
    if (!d.derive_units.empty()) d.derive_units.emplace_back();
  }
  return d;
}

std::shared_ptr<const fit::CompiledModel> user_model(const FitOptions& o) {
  return std::make_shared<const fit::CompiledModel>(describe_user_model(o));
}

// The engine's progress callback, which also stops the fit (Cancelled) soon
// after the cancel flag is set: every worker thread reports every few hundred
// fits, so a cancel needs no wait for the end of a block of rows.
namespace {
std::function<void(std::int64_t)> with_cancel(std::function<void(std::int64_t)> progress,
                                              const std::atomic<bool>* cancel) {
  if (cancel == nullptr) return progress;
  return [progress = std::move(progress), cancel](std::int64_t n) {
    if (progress) progress(n);
    throw_if_cancelled(cancel);
  };
}
}  // namespace

// ---- CubeFitter --------------------------------------------------------------------

struct CubeFitter::Impl {
  FitOptions options;
  std::vector<float> x;
  fit::ModelSpec spec;
  std::vector<std::string> names;
  fit::FitOptions engine;
  std::vector<double> fixed_values;  // NaN where not fixed
  std::vector<double> global;        // the mean spectrum's fit (automatic starts)
  std::optional<fit::CellFits> cells;  // coarse-to-fine starts: the cells' fits
  std::int64_t refitted = 0;           // pixels fitted again from other starts
  std::string backend = "cpu";
  int device = -1;
#if defined(TESSERA_HAVE_CUDA)
  std::unique_ptr<cuda::FitCudaSession> gpu;  // device buffers kept across calls
  // A model of the user's own: its kernels compiled by NVRTC for the bound
  // device (when the backend is chosen), loaded in the thread that fits.
  std::string cuda_image;
  std::unique_ptr<cuda::UserKernels> user_kernels;
#endif

  void set_constraints();
  void bind_backend();
  fit::FitResults fit_gpu(const fit::FitBatch& batch, const std::function<void(std::int64_t)>& progress);
  fit::FitResults fit(const fit::FitBatch& batch, bool report);
};

fit::FitResults CubeFitter::Impl::fit(const fit::FitBatch& batch, bool report) {
  if (backend == "cuda") return fit_gpu(batch, report ? engine.progress : nullptr);
  if (report) return fit::fit_batch(spec, batch, engine);
  fit::FitOptions quiet = engine;
  quiet.progress = nullptr;
  return fit::fit_batch(spec, batch, quiet);
}

void CubeFitter::Impl::set_constraints() {
  const std::size_t P = names.size();
  engine.constraints.assign(P, {});
  fixed_values.assign(P, std::numeric_limits<double>::quiet_NaN());
  auto index = [&](const std::string& name, const char* opt) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      throw std::invalid_argument(std::string(opt) + ": unknown parameter '" + name +
                                  "' (this model has " + all + ")");
    }
    return std::size_t(it - names.begin());
  };
  for (const auto& [name, value] : options.fix) {
    const std::size_t j = index(name, "--fix");
    engine.constraints[j].fixed = true;
    fixed_values[j] = value;
    if (!std::isfinite(value))
      throw std::invalid_argument("--fix " + name + "=" + std::to_string(value) + ": value must be finite");
  }
  for (const auto& name : options.hold) engine.constraints[index(name, "hold")].fixed = true;  // value: NaN
  if (spec.kind == fit::ModelKind::expression)
    for (std::size_t j = 0; j < spec.user->description().bounds.size(); ++j) {
      engine.constraints[j].lo = spec.user->description().bounds[j].first;
      engine.constraints[j].hi = spec.user->description().bounds[j].second;
    }
  for (const auto& [name, b] : options.bounds) {
    const std::size_t j = index(name, "--bound");
    engine.constraints[j].lo = b.lo;
    engine.constraints[j].hi = b.hi;
  }
}

void CubeFitter::Impl::bind_backend() {
  // The covariance, for the derived maps' uncertainties (after a GPU fit, from
  // covariance_at on the CPU).
  engine.covariance = !fit::derived_maps(spec).names.empty();
  if (options.backend == "cpu") return;
#if defined(TESSERA_HAVE_CUDA)
  const auto q = cuda::query_devices();
  const int n = int(q.devices.size());
  const int want = options.device >= 0 ? options.device : 0;
  std::string why_not;
  if (n == 0) why_not = "no CUDA device visible" + (q.message.empty() ? "" : " (" + q.message + ")");
  else if (want >= n)
    why_not = "device " + std::to_string(want) + ": only " + std::to_string(n) + " visible";
  if (why_not.empty()) {
    if (spec.kind == fit::ModelKind::expression)  // compile errors are the user's: invalid_argument
      cuda_image = cuda::nvrtc_compile(fit::user_model_cuda_source(spec.user->model()), cuda::device_arch(want));
    backend = "cuda";
    device = want;
    return;
  }
#else
  const std::string why_not = "this build has no CUDA backend";
#endif
  if (options.backend == "cuda") throw std::invalid_argument("--backend cuda: " + why_not);
}

fit::FitResults CubeFitter::Impl::fit_gpu(const fit::FitBatch& batch,
                                          const std::function<void(std::int64_t)>& progress) {
  fit::FitResults res;
#if defined(TESSERA_HAVE_CUDA)
  // The device is per thread: set it in the thread that fits.
  if (std::string e = cuda::set_device(device); !e.empty()) throw std::runtime_error(e);
  const int P = spec.n_params();
  const std::int64_t npix = batch.n_pix;
  res.n_params = P;
  res.params.resize(std::size_t(npix * P));
  res.sigma.resize(std::size_t(npix * P));
  res.chi2.resize(std::size_t(npix));
  res.state.resize(std::size_t(npix));
  res.iterations.resize(std::size_t(npix));
  cuda::FitInputDesc in;
  in.x = x.data();
  in.n_points = int(x.size());
  in.y = batch.y;
  in.weights = batch.weights;
  in.mask = batch.mask;
  in.start = batch.start;
  in.n_pix = npix;
  const cuda::FitOutputDesc out{res.params.data(), res.sigma.data(), res.chi2.data(), res.state.data(),
                                res.iterations.data()};
  cuda::FitConfigDesc config = to_cuda(spec, engine);
  config.kernel = to_cuda_kernel(options.gpu_kernel);
  if (!gpu) gpu = std::make_unique<cuda::FitCudaSession>();
  if (spec.kind == fit::ModelKind::expression && !user_kernels)
    user_kernels = std::make_unique<cuda::UserKernels>(cuda_image);
  gpu->fit(to_cuda(spec, user_kernels.get()), config, in, out);
  // The GPU returns no covariance: the derived maps' uncertainties come from
  // one evaluation per pixel on the CPU at the GPU's parameters.
  if (engine.covariance) {
    const fit::FitBatch at{batch.x, batch.y, batch.weights, nullptr, res.params.data(), npix};
    res.covariance = fit::covariance_at(spec, at, res.state.data(), engine);
  }
  if (progress) progress(npix);
#else
  (void)batch;
  (void)progress;
#endif
  return res;
}

CubeFitter::CubeFitter(const FitOptions& options, std::span<const float> sweep)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.options = options;
  if (std::string why; !options.IsValid(&why)) throw std::invalid_argument(why);
  for (float v : sweep)
    if (!std::isfinite(v)) throw std::invalid_argument("the sweep holds a non-finite value");
  m.x.assign(sweep.begin(), sweep.end());
  const bool own = !options.expr.empty() || !options.model_file.empty() || !is_builtin_model(options.model);
  m.spec = own ? fit::expression_spec(user_model(options))
               : fit::make_model_spec(options.model, options.peaks, options.background, m.x);
  m.names = m.spec.param_names();
  m.engine.estimator = options.estimator == "mle" ? fit::Estimator::mle : fit::Estimator::lse;
  m.engine.max_iter = options.max_iter;
  m.engine.tol = options.tol;
  m.engine.threads = options.threads;
  m.engine.progress = with_cancel(options.progress, options.cancel);
  m.set_constraints();
  if (std::string msg = m.engine.validate(m.spec, int(m.x.size())); !msg.empty())
    throw std::invalid_argument(msg);
  m.bind_backend();
}

void CubeFitter::use_backend(const std::string& backend, int device) {
  Impl& m = *impl_;
#if defined(TESSERA_HAVE_CUDA)
  if (m.gpu) throw std::logic_error("CubeFitter: the backend is chosen before the first fit");
#endif
  m.options.backend = backend;
  m.options.device = device;
  if (std::string why; !m.options.IsValid(&why)) throw std::invalid_argument(why);
  m.backend = "cpu";
  m.device = -1;
  m.bind_backend();
}

CubeFitter::~CubeFitter() {
#if defined(TESSERA_HAVE_CUDA)
  if (impl_ && (impl_->gpu || impl_->user_kernels)) {
    // Freed with the device current, as in the threads that used it.
    (void)cuda::set_device(impl_->device);
    impl_->gpu.reset();
    impl_->user_kernels.reset();
  }
#endif
}

const fit::ModelSpec& CubeFitter::spec() const { return impl_->spec; }
const std::vector<std::string>& CubeFitter::param_names() const { return impl_->names; }
const std::string& CubeFitter::backend() const { return impl_->backend; }

std::string CubeFitter::gpu_kernel() const {
#if defined(TESSERA_HAVE_CUDA)
  if (impl_->backend == "cuda")
    return cuda::use_warp_per_fit(to_cuda_kernel(impl_->options.gpu_kernel), impl_->spec.n_params())
               ? "warp per fit"
               : "thread per fit";
#endif
  return {};
}

bool CubeFitter::derived_sigma() const { return impl_->engine.covariance; }

void CubeFitter::set_progress(std::function<void(std::int64_t)> progress) {
  impl_->engine.progress = with_cancel(std::move(progress), impl_->options.cancel);
}

fit::CellGrid CubeFitter::start_grid(std::int64_t ny, std::int64_t nx) const {
  // The peak models and the models of the user's own go coarse to fine; the
  // decays search each pixel's spectrum from the mean's fit.
  const fit::ModelSpec& s = impl_->spec;
  return s.kind == fit::ModelKind::expression || s.is_peak_model() ? fit::cell_grid(ny, nx)
                                                                    : fit::single_cell(ny, nx);
}

void CubeFitter::start_from_sums(std::span<const double> sum, std::span<const std::int64_t> count,
                                 const fit::CellGrid& grid) {
  Impl& m = *impl_;
  const int n = int(m.x.size());
  const auto mean = fit::image_mean(sum, count, grid, n);
  if (mean.empty() || !std::isfinite(mean[0]))
    throw std::invalid_argument("the cube has no pixel with finite, non-zero data");
  fit::FitOptions one = m.engine;
  one.threads = 1;
  one.progress = nullptr;
  m.global = fit::spectrum_start(m.spec, m.x, mean, one, m.fixed_values);
  m.cells.reset();
  if (!grid.single())
    m.cells = fit::fit_cells(m.spec, m.x, fit::cell_means(sum, count, grid, n), grid, m.global, m.engine,
                             m.fixed_values);
}

std::int64_t CubeFitter::refitted() const { return impl_->refitted; }

fit::FitResults CubeFitter::fit_rows(const float* y, std::int64_t row0, std::int64_t rows, std::int64_t nx,
                                     const std::uint8_t* mask, std::vector<float>* start,
                                     const float* weights) {
  Impl& m = *impl_;
  const int P = m.spec.n_params();
  const std::int64_t npix = rows * nx;
  if (npix == 0) return fit::fit_batch(m.spec, fit::FitBatch{m.x, nullptr, nullptr, nullptr, nullptr, 0}, m.engine);
  std::vector<float> automatic;
  const bool from_cells = start == nullptr && m.cells;
  if (start == nullptr) {
    if (!m.options.hold.empty())
      throw std::invalid_argument("hold: parameters held at their starts need start maps");
    if (m.global.empty()) throw std::logic_error("CubeFitter: automatic starts before start_from_sums");
    if (from_cells) {
      if (m.cells->grid.nx != nx || row0 < 0 || row0 + rows > m.cells->grid.ny)
        throw std::invalid_argument("internal: rows outside the image of the automatic start");
      automatic = fit::starts_from_cells(*m.cells, row0, rows, m.engine);
    } else {
      automatic.resize(std::size_t(npix * P));
      fit::cube_starts(m.spec, m.x, y, int(rows), int(nx), m.global, m.engine, automatic.data());
    }
    start = &automatic;
  }
  if (std::int64_t(start->size()) != npix * P) throw std::invalid_argument("internal: start of the wrong size");
  for (int j = 0; j < P; ++j)
    if (m.engine.constraints[std::size_t(j)].fixed && !std::isnan(m.fixed_values[std::size_t(j)]))
      for (std::int64_t p = 0; p < npix; ++p) (*start)[std::size_t(p * P + j)] = float(m.fixed_values[std::size_t(j)]);
  const fit::FitBatch batch{m.x, y, weights, mask, start->data(), npix};
  fit::FitResults res = m.fit(batch, true);
  if (from_cells) {
    // The peak models' own search for the pixels worse than their neighbours.
    fit::StartSearch search;
    if (m.spec.is_peak_model())
      search = [&m, P](const float* ys, std::int64_t k) {
        std::vector<float> s(std::size_t(k * P));
        fit::cube_starts(m.spec, m.x, ys, 1, int(k), m.global, m.engine, s.data());
        return s;
      };
    m.refitted += fit::rescue_worse_than_neighbours(
        *m.cells, row0, rows, batch, [&](const fit::FitBatch& b) { return m.fit(b, false); }, res, search);
  }
  return res;
}

}  // namespace tessera::api

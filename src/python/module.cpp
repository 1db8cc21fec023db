// tessera._core: the binding of src/api for the Python package. Thin: numpy
// arrays become api::ArrayView (no copy, any strides), an options dict becomes
// api::FitOptions or api::XcorrOptions, results come back as numpy arrays that
// own the library's vectors. The package's Python modules (src/python/tessera)
// check and normalise the arguments first; the library's own checks give the
// command's one-line messages as ValueError.
//
// Long calls run on a worker thread with the GIL released while the calling
// thread waits, checks for Ctrl-C (the library's cancel flag, then
// KeyboardInterrupt) and passes progress to a Python callback.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "api/fit.hpp"
#include "api/xcorr.hpp"
#include "core/threads.hpp"
#include "fit/cube.hpp"
#include "fit/model_spec.hpp"
#include "fit/jit.hpp"
#ifdef TESSERA_HAVE_CUDA
#include "cuda/device_info.hpp"
#endif

namespace py = pybind11;
using namespace tessera;

namespace {

// ---- arrays ----------------------------------------------------------------------------

api::DType dtype_of(const py::array& a, const char* what) {
  const py::dtype d = a.dtype();
  const char k = d.kind();
  const auto size = d.itemsize();
  if (k == 'f' && size == 4) return api::DType::float32;
  if (k == 'f' && size == 8) return api::DType::float64;
  if (k == 'i' || k == 'u' || k == 'b') {
    const bool u = k != 'i';
    switch (size) {
      case 1: return u ? api::DType::uint8 : api::DType::int8;
      case 2: return u ? api::DType::uint16 : api::DType::int16;
      case 4: return u ? api::DType::uint32 : api::DType::int32;
      case 8: return u ? api::DType::uint64 : api::DType::int64;
      default: break;
    }
  }
  throw py::type_error(std::string(what) + ": expected a numeric array, got dtype " +
                       py::str(static_cast<const py::handle&>(d)).cast<std::string>());
}

template <int N>
api::ArrayView<N> view(const py::object& o, const char* what) {
  api::ArrayView<N> v;
  if (o.is_none()) return v;
  if (!py::isinstance<py::array>(o)) throw py::type_error(std::string(what) + ": expected a numpy array");
  const auto a = py::reinterpret_borrow<py::array>(o);
  if (a.ndim() != N)
    throw py::value_error(std::string(what) + ": expected " + std::to_string(N) + " dimensions, got " +
                          std::to_string(a.ndim()));
  if (!a.dtype().attr("isnative").cast<bool>())
    throw py::type_error(std::string(what) + ": byte order not native");
  v.type = dtype_of(a, what);
  for (int k = 0; k < N; ++k) {
    v.shape[std::size_t(k)] = a.shape(k);
    v.strides[std::size_t(k)] = a.strides(k);
  }
  v.data = a.data();
  // An empty array is still "present": point at something.
  static const double nothing = 0;
  if (v.data == nullptr) v.data = &nothing;
  return v;
}

// A numpy array that owns the vector (moved in), shaped `shape`.
template <class T>
py::array owned(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule free(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, heap->data(), free);
}

// ---- options ---------------------------------------------------------------------------

template <class T>
T get(const py::dict& d, const char* key, T fallback) {
  return d.contains(key) && !d[key].is_none() ? d[key].cast<T>() : fallback;
}

std::vector<std::pair<std::string, double>> named_numbers(const py::dict& d, const char* key) {
  std::vector<std::pair<std::string, double>> out;
  if (d.contains(key) && !d[key].is_none())
    for (auto item : d[key].cast<py::list>()) out.push_back(item.cast<std::pair<std::string, double>>());
  return out;
}

api::FitOptions fit_options(const py::dict& d) {
  api::FitOptions o;
  o.model = get<std::string>(d, "model", o.model);
  o.peaks = get<int>(d, "peaks", o.peaks);
  o.background = get<std::string>(d, "background", o.background);
  o.expr = get<std::string>(d, "expr", "");
  o.params = get<std::vector<std::string>>(d, "params", {});
  o.consts = named_numbers(d, "consts");
  o.start = named_numbers(d, "start");
  o.model_file = get<std::string>(d, "model_file", "");
  o.derive = get<std::vector<std::pair<std::string, std::string>>>(d, "derive", {});
  o.fix = named_numbers(d, "fix");
  for (const auto& [name, lo_hi] : get<std::vector<std::pair<std::string, std::pair<double, double>>>>(d, "bounds", {}))
    o.bounds.emplace_back(name, api::Bound{lo_hi.first, lo_hi.second});
  o.hold = get<std::vector<std::string>>(d, "hold", {});
  o.estimator = get<std::string>(d, "estimator", o.estimator);
  o.max_iter = get<int>(d, "max_iter", o.max_iter);
  o.tol = get<double>(d, "tol", o.tol);
  o.threads = get<int>(d, "threads", o.threads);
  o.backend = get<std::string>(d, "backend", "auto");
  o.device = get<int>(d, "device", -1);
  o.gpu_kernel = get<std::string>(d, "gpu_kernel", o.gpu_kernel);
  const std::string roi = get<std::string>(d, "roi", "");
  if (!roi.empty()) {
    try {
      o.roi = fit::parse_roi(roi);
    } catch (const std::exception& e) {
      throw std::invalid_argument(e.what());
    }
  }
  o.bin = get<int>(d, "bin", 1);
  return o;
}

api::XcorrOptions xcorr_options(const py::dict& d) {
  api::XcorrOptions o;
  o.crop_y = get<int>(d, "crop_y", 0);
  o.crop_x = get<int>(d, "crop_x", 0);
  o.eps = get<double>(d, "eps", o.eps);
  o.min_overlap = get<double>(d, "min_overlap", 0.0);
  o.normalize_input = get<bool>(d, "normalize_input", false);
  o.mode = get<std::string>(d, "mode", o.mode);
  o.exclusion = get<int>(d, "exclusion", o.exclusion);
  // --top and --min-distance: absent (None in Python) is unset, as on the command line.
  if (d.contains("top")) o.top = get<int>(d, "top", 0);
  if (d.contains("min_distance")) o.min_distance = get<int>(d, "min_distance", 0);
  o.threads = get<int>(d, "threads", 0);
  o.backend = get<std::string>(d, "backend", "auto");
  o.device = get<int>(d, "device", -1);
  o.fft_wisdom = get<std::string>(d, "fft_wisdom", "");
  return o;
}

// ---- running with the GIL released -------------------------------------------------------

// Runs work(cancel, done) on a worker thread. The calling thread, holding the
// GIL only briefly, checks for signals (Ctrl-C: sets cancel, then raises the
// KeyboardInterrupt once the worker has stopped) and hands the count of
// finished items to progress (when not None) every 0.1 s.
template <class R, class Work>
R run_released(Work&& work, const py::object& progress) {
  std::atomic<bool> cancel{false};
  std::atomic<std::int64_t> done{0};
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  R result{};
  std::exception_ptr error;
  bool interrupted = false;
  std::exception_ptr callback_error;
  {
    py::gil_scoped_release release;
    std::thread worker([&] {
      try {
        result = work(&cancel, &done);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard lock(m);
      finished = true;
      cv.notify_all();
    });
    for (;;) {
      {
        std::unique_lock lock(m);
        if (cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return finished; })) break;
      }
      if (interrupted || callback_error) continue;
      py::gil_scoped_acquire acquire;
      if (PyErr_CheckSignals() != 0) {
        interrupted = true;  // the exception stays set until we return
        cancel = true;
        continue;
      }
      if (!progress.is_none()) {
        const std::int64_t n = done.exchange(0);
        if (n > 0) {
          try {
            progress(n);
          } catch (...) {
            callback_error = std::current_exception();
            cancel = true;
          }
        }
      }
    }
    worker.join();
  }
  if (interrupted) throw py::error_already_set();
  if (callback_error) std::rethrow_exception(callback_error);
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const api::Cancelled&) {
      throw py::error_already_set();  // only our own flag cancels: a signal's exception is set
    }
  }
  if (!progress.is_none()) {
    const std::int64_t n = done.exchange(0);
    if (n > 0) progress(n);
  }
  return result;
}

// ---- fit ---------------------------------------------------------------------------------

py::dict fit_result_dict(api::FitResult&& r) {
  const std::vector<py::ssize_t> shape{py::ssize_t(r.ny), py::ssize_t(r.nx)};
  py::dict out;
  out["ny"] = r.ny;
  out["nx"] = r.nx;
  out["model"] = r.model;
  out["param_names"] = r.param_names;
  out["param_units"] = r.param_units;
  out["x_mid"] = r.x_mid;
  py::list params, sigma, derived, derived_sigma;
  for (auto& p : r.params) params.append(owned(std::move(p), shape));
  for (auto& p : r.sigma) sigma.append(owned(std::move(p), shape));
  for (auto& p : r.derived) derived.append(owned(std::move(p), shape));
  for (auto& p : r.derived_sigma) derived_sigma.append(owned(std::move(p), shape));
  out["params"] = params;
  out["sigma"] = sigma;
  out["derived_names"] = r.derived_names;
  out["derived"] = derived;
  out["derived_sigma"] = derived_sigma;
  out["derived_definition"] = r.derived_definition;
  out["chi2"] = owned(std::move(r.chi2), shape);
  out["state"] = owned(std::move(r.state), shape);
  out["iterations"] = owned(std::move(r.iterations), shape);
  out["state_counts"] = std::vector<std::int64_t>(r.state_counts.begin(), r.state_counts.end());
  out["backend"] = r.backend;
  return out;
}

py::dict fit_cube(const py::object& data, const py::object& ref, const py::object& sweep, const py::object& mask,
                  const py::object& weights, const py::list& start, const py::dict& options,
                  const py::object& progress) {
  api::FitInput in;
  in.data = view<3>(data, "cube");
  in.ref = view<3>(ref, "ref");
  in.sweep = view<1>(sweep, "sweep");
  in.mask = view<2>(mask, "mask");
  in.weights = view<3>(weights, "weights");
  for (auto s : start) in.start.push_back(view<2>(py::reinterpret_borrow<py::object>(s), "guess"));
  api::FitOptions o = fit_options(options);
  if (std::string why; !o.IsValid(&why)) throw std::invalid_argument(why);
  auto r = run_released<api::FitResult>(
      [&](std::atomic<bool>* cancel, std::atomic<std::int64_t>* done) {
        o.cancel = cancel;
        o.progress = [done](std::int64_t n) { done->fetch_add(n); };
        return api::fit_cube(in, o);
      },
      progress);
  return fit_result_dict(std::move(r));
}

// ---- xcorr -------------------------------------------------------------------------------

py::dict xcorr_pairs(const py::object& images, const py::object& templates, const py::object& pairs,
               const py::dict& options, const py::object& progress, const py::object& image_masks,
               const py::object& template_masks) {
  const auto im = view<3>(images, "images");
  const auto tp = view<3>(templates, "templates");
  const auto imask = view<3>(image_masks, "image_masks");  // None: absent
  const auto tmask = view<3>(template_masks, "template_masks");
  const auto pr = view<2>(pairs, "pairs");
  api::XcorrOptions o = xcorr_options(options);
  if (std::string why; !o.IsValid(&why)) throw std::invalid_argument(why);
  auto r = run_released<api::XcorrResult>(
      [&](std::atomic<bool>* cancel, std::atomic<std::int64_t>* done) {
        o.cancel = cancel;
        o.progress = [done](std::int64_t n) { done->fetch_add(n); };
        return api::xcorr(im, tp, pr, o, imask, tmask);
      },
      progress);
  const auto p = py::ssize_t(r.n_pairs);
  py::dict out;
  out["coords"] = owned(std::move(r.coords), {p, 2});
  out["peaks"] = owned(std::move(r.peaks), {p});
  out["quality"] = owned(std::move(r.quality), {p, 2});
  out["subpixel"] = owned(std::move(r.subpixel), {p, 2});
  if (r.top_k > 0) {
    const auto k = py::ssize_t(r.top_k);
    out["top_coords"] = owned(std::move(r.top_coords), {p, k, 2});
    out["top_peaks"] = owned(std::move(r.top_peaks), {p, k});
  }
  return out;
}

// The parameter names of the model the options describe, in output order.
std::vector<std::string> model_params(const py::dict& options) {
  const api::FitOptions o = fit_options(options);
  if (std::string why; !o.IsValid(&why)) throw std::invalid_argument(why);
  if (o.expr.empty() && o.model_file.empty() && api::is_builtin_model(o.model))
    return fit::make_model_spec(o.model, o.peaks, o.background, {}).param_names();
  return api::describe_user_model(o).source.params;
}

// ---- info --------------------------------------------------------------------------------

const char* simd_compiled() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__)
  return "AVX2";
#elif defined(__AVX__)
  return "AVX";
#elif defined(__SSE2__)
  return "SSE2";
#elif defined(__ARM_NEON)
  return "NEON";
#else
  return "none (scalar)";
#endif
}

std::string simd_this_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "AVX-512";
  if (__builtin_cpu_supports("avx2")) return "AVX2";
  if (__builtin_cpu_supports("avx")) return "AVX";
  return "SSE2";
#else
  return "";
#endif
}

py::dict info() {
  py::dict d;
  d["version"] = TESSERA_VERSION;
  d["simd_compiled"] = simd_compiled();
  d["simd_cpu"] = simd_this_cpu();
  d["cpu_threads"] = core::usable_cores();
  d["jit_compiler"] = fit::jit::toolchain().compiler;
  py::list devices;
#ifdef TESSERA_HAVE_CUDA
  d["backends"] = std::vector<std::string>{"cpu", "cuda"};
  d["cuda_architectures"] = std::string(cuda::compiled_architectures());
  const cuda::DeviceQuery q = cuda::query_devices();
  d["cuda_runtime"] = q.runtime_version;
  d["cuda_driver"] = q.driver_version;
  d["cuda_message"] = q.message;
  for (const auto& dev : q.devices) {
    py::dict e;
    e["index"] = dev.index;
    e["name"] = dev.name;
    e["compute_capability"] = std::to_string(dev.major) + "." + std::to_string(dev.minor);
    e["memory_bytes"] = dev.total_memory;
    e["multiprocessors"] = dev.multiprocessors;
    devices.append(e);
  }
#else
  d["backends"] = std::vector<std::string>{"cpu"};
  d["cuda_message"] = "built without CUDA";
#endif
  d["cuda_devices"] = devices;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "tessera's library (src/api) for the Python package; use the functions of `tessera`.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::out_of_range& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("fit_cube", &fit_cube, py::arg("data"), py::arg("ref"), py::arg("sweep"), py::arg("mask"),
        py::arg("weights"), py::arg("start"), py::arg("options"), py::arg("progress"));
  m.def("xcorr", &xcorr_pairs, py::arg("images"), py::arg("templates"), py::arg("pairs"), py::arg("options"),
        py::arg("progress"), py::arg("image_masks") = py::none(), py::arg("template_masks") = py::none());
  m.def("info", &info);
  m.def("model_params", &model_params, py::arg("options"));
  std::vector<std::string> states;
  for (int s = 0; s < core::n_fit_states; ++s) states.emplace_back(core::state_name(core::FitState(s)));
  m.attr("state_names") = states;
  m.attr("version") = TESSERA_VERSION;
}

#include "xcorr.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <stdexcept>

#include "core/fit_input.hpp"
#include "api/fft_wisdom.hpp"
#include "fit/batch.hpp"
#if defined(TESSERA_HAVE_CUDA)
#include "api/xcorr_cuda_bridge.hpp"
#include "cuda/device_info.hpp"
#endif

namespace tessera::api {

// ---- options --------------------------------------------------------------------

bool XcorrOptions::IsValid(std::string* why) const {
  std::string e;
  if (crop_y < 0 || crop_x < 0)
    e = "--crop must not be negative, got '" + std::to_string(crop_y) + "," + std::to_string(crop_x) + "'";
  else if (!(eps >= 0) || !std::isfinite(eps))
    e = "--eps must be finite and >= 0";
  else if (!(min_overlap >= 0 && min_overlap <= 1))
    e = "--min-overlap must be between 0 and 1 (a fraction of the template's pixels), got " + std::to_string(min_overlap);
  else if (mode != "full" && mode != "valid")
    e = "--mode must be full or valid, got '" + mode + "'";
  else if (exclusion < 0)
    e = "--exclusion must be >= 0";
  else if (top && *top < 1)
    e = "--top must be >= 1 (the number of peaks kept per pair), got " + std::to_string(*top);
  else if (min_distance && *min_distance < 0)
    e = "--min-distance must be >= 0, got " + std::to_string(*min_distance);
  else if (min_distance && !top)
    e = "--min-distance needs --top (it is the distance between the top peaks)";
  else if (threads < 0)
    e = "--threads must be >= 0";
  else if (backend != "auto" && backend != "cpu" && backend != "cuda")
    e = "--backend must be auto, cpu or cuda, got '" + backend + "'";
  if (why) *why = e;
  return e.empty();
}

xcorr::Options XcorrOptions::internal() const {
  if (std::string why; !IsValid(&why)) throw std::invalid_argument(why);
  xcorr::Options o;
  o.crop_y = crop_y;
  o.crop_x = crop_x;
  o.eps = eps;
  o.min_overlap = min_overlap;
  o.normalize_input = normalize_input;
  o.mode = mode == "valid" ? xcorr::Mode::valid : xcorr::Mode::full;
  o.exclusion = exclusion;
  o.fft_from_wisdom = !fft_wisdom.empty();
  o.top_k = top.value_or(0);
  o.min_distance = min_distance.value_or(exclusion);  // documented default: --exclusion
  return o;
}

int XcorrOptions::thread_count() const { return threads > 0 ? threads : fit::usable_cores(); }

// ---- results --------------------------------------------------------------------

void XcorrResult::resize(std::int64_t n, std::int64_t k) {
  constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();
  n_pairs = n;
  top_k = k;
  top_coords.assign(std::size_t(n * k) * 2, -1);
  top_peaks.assign(std::size_t(n * k), nan_f);
  coords.assign(std::size_t(n) * 2, -1);
  peaks.assign(std::size_t(n), nan_f);
  quality.assign(std::size_t(n) * 2, nan_f);
  subpixel.assign(std::size_t(n) * 2, std::numeric_limits<double>::quiet_NaN());
}

void XcorrResult::set(std::int64_t p, const xcorr::Peak& q, std::span<const core::ZnccBest> top) {
  const auto i = std::size_t(p);
  const auto k = std::size_t(top_k);
  if (top.size() != k) throw std::logic_error("xcorr: a pair's top list must hold top_k entries");
  for (std::size_t c = 0; c < k; ++c) {
    top_coords[2 * (i * k + c)] = top[c].y;
    top_coords[2 * (i * k + c) + 1] = top[c].x;
    top_peaks[i * k + c] = top[c].value;
  }
  coords[2 * i] = q.y;
  coords[2 * i + 1] = q.x;
  peaks[i] = q.value;
  quality[2 * i] = q.sharpness;
  quality[2 * i + 1] = q.peak_ratio;
  subpixel[2 * i] = q.sub_y;
  subpixel[2 * i + 1] = q.sub_x;
}

// ---- input checks ---------------------------------------------------------------

std::string check_pair_indices(std::span<const std::int64_t> pairs, std::int64_t n_images,
                               std::int64_t n_templates) {
  for (std::size_t p = 0; 2 * p + 1 < pairs.size(); ++p) {
    const std::int64_t a = pairs[2 * p], b = pairs[2 * p + 1];
    if (a < 0 || a >= n_images)
      return "pair " + std::to_string(p) + " names image " + std::to_string(a) + ", outside [0, " +
             std::to_string(n_images) + ")";
    if (b < 0 || b >= n_templates)
      return "pair " + std::to_string(p) + " names template " + std::to_string(b) + ", outside [0, " +
             std::to_string(n_templates) + ")";
  }
  return {};
}

std::string check_image_size(std::int64_t H, std::int64_t W) {
  // The map is (H+h-1) x (W+w-1) with h <= H: its sides must fit an int.
  constexpr std::int64_t limit = std::numeric_limits<int>::max() / 2;
  return H > limit || W > limit ? "images are too large" : "";
}

std::string check_template_fits(std::int64_t H, std::int64_t W, std::int64_t h, std::int64_t w) {
  if (h <= H && w <= W) return {};
  return "templates " + std::to_string(h) + "x" + std::to_string(w) + " are larger than the images " +
         std::to_string(H) + "x" + std::to_string(W) +
         " (as normxcorr2, each template must fit inside its image)";
}

namespace {

std::size_t first_nonfinite(const float* v, std::size_t n) { return core::first_nonfinite(v, n); }
std::size_t first_nonfinite(const double* v, std::size_t n) {
  std::size_t i = 0;
  while (i < n && std::isfinite(v[i])) ++i;
  return i;
}

// check_finite for frames of float or double.
template <class T>
std::string nonfinite_message(std::span<const T> data, std::span<const std::int64_t> frames, std::int64_t h,
                              std::int64_t w, const char* what) {
  const auto plane = std::size_t(h * w);
  for (std::size_t f = 0; f < frames.size(); ++f)
    if (const std::size_t i = first_nonfinite(data.data() + f * plane, plane); i < plane)
      return std::string(what) + " " + std::to_string(frames[f]) + " has a non-finite value (" +
             std::to_string(data[f * plane + i]) + ") at (" + std::to_string(i / std::size_t(w)) + ", " +
             std::to_string(i % std::size_t(w)) + ")";
  return {};
}

template <class T>
std::string mask_values_to_bytes(std::span<const T> values, std::span<const std::int64_t> frames, std::int64_t h,
                                 std::int64_t w, std::uint8_t* out) {
  if (std::string e = nonfinite_message(values, frames, h, w, "mask"); !e.empty()) return e;
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i] != 0;
  return {};
}

}  // namespace

std::string check_finite(std::span<const float> data, std::span<const std::int64_t> frames,
                         std::int64_t h, std::int64_t w, const char* what) {
  return nonfinite_message(data, frames, h, w, what);
}

std::string mask_to_bytes(std::span<const double> values, std::span<const std::int64_t> frames,
                          std::int64_t h, std::int64_t w, std::uint8_t* out) {
  return mask_values_to_bytes(values, frames, h, w, out);
}
std::string mask_to_bytes(std::span<const float> values, std::span<const std::int64_t> frames,
                          std::int64_t h, std::int64_t w, std::uint8_t* out) {
  return mask_values_to_bytes(values, frames, h, w, out);
}

std::string check_mask_shape(std::span<const std::int64_t> shape, std::span<const std::int64_t> frames_shape,
                             const char* what) {
  if (std::equal(shape.begin(), shape.end(), frames_shape.begin(), frames_shape.end())) return {};
  auto text = [](std::span<const std::int64_t> d) {
    std::string s = "[";
    for (std::size_t k = 0; k < d.size(); ++k) s += (k ? ", " : "") + std::to_string(d[k]);
    return s + "]";
  };
  return "shape " + text(shape) + " differs from the " + what + "' " + text(frames_shape) +
         " (one mask per frame, nonzero = valid)";
}

// ---- the engine -----------------------------------------------------------------

#if defined(TESSERA_HAVE_CUDA)
struct PairCorrelator::Gpu {
  cuda::XcorrCuda context;             // plans and device caches, kept across batches
  cuda::MaskedCorrelatorCuda masked;  // masked pairs' double correlations
};
#else
struct PairCorrelator::Gpu {};
#endif

PairCorrelator::PairCorrelator(const xcorr::Options& options, int threads, const std::string& backend,
                               int device)
    : options_(options), threads_(std::max(1, threads)), on_gpu_(backend == "cuda"), device_(device) {
  xcorr::validate(options_);
  if (backend != "cpu" && backend != "cuda")
    throw std::invalid_argument("xcorr: the engine takes backend cpu or cuda, got '" + backend + "'");
#if !defined(TESSERA_HAVE_CUDA)
  if (on_gpu_)
    throw std::invalid_argument("--backend cuda: this build has no CUDA backend (nvcc was not found when it was configured)");
#endif
}

PairCorrelator::~PairCorrelator() = default;

std::vector<xcorr::Peak> PairCorrelator::correlate(const Frames& images, const Frames& templates,
                                                   std::span<const std::pair<int, int>> pairs,
                                                   std::span<const std::uint8_t> cache_template_spectra,
                                                   const std::function<void(std::int64_t)>& done,
                                                   std::vector<core::ZnccBest>* top) {
  if (pairs.empty()) return {};
  const int H = images.height, W = images.width, h = templates.height, w = templates.width;
  const auto n_img = std::size_t(images.count), n_tpl = std::size_t(templates.count);
  const std::size_t image_plane = std::size_t(H) * std::size_t(W), template_plane = std::size_t(h) * std::size_t(w);
  auto image_view = [&](std::size_t i) {
    return xcorr::View{images.data + i * image_plane, H, W, images.masks ? images.masks + i * image_plane : nullptr};
  };
  std::vector<std::unique_ptr<xcorr::PreparedImage>> pimg(n_img);
  std::vector<std::unique_ptr<xcorr::PreparedTemplate>> ptpl(n_tpl);
  // The GPU transforms on the device: no host spectra.
  auto cache = [&](std::size_t j) {
    return !on_gpu_ && j < cache_template_spectra.size() && cache_template_spectra[j] != 0;
  };
  // The CPU prepares each image in the thread that correlates it
  // (correlate_image_groups); the GPU path takes them prepared.
  const std::size_t n_prep = on_gpu_ ? n_img : 0;
  xcorr::parallel_for(n_prep + n_tpl, threads_, [&](std::size_t i) {
    if (i < n_prep)
      pimg[i] = std::make_unique<xcorr::PreparedImage>(image_view(i), options_.normalize_input,
                                                       /*host_tables=*/false);  // the device builds its own
    else {
      const std::size_t j = i - n_prep;
      ptpl[j] = std::make_unique<xcorr::PreparedTemplate>(
          xcorr::View{templates.data + j * template_plane, h, w,
                      templates.masks ? templates.masks + j * template_plane : nullptr},
          cache(j));
    }
  });
  std::vector<const xcorr::PreparedTemplate*> tp;
  for (auto& p : ptpl) tp.push_back(p.get());
#if defined(TESSERA_HAVE_CUDA)
  if (on_gpu_) {
    std::vector<const xcorr::PreparedImage*> ip;
    for (auto& p : pimg) ip.push_back(p.get());
    // The current device is per thread, and the caller's thread may change
    // from one batch to the next.
    if (std::string e = cuda::set_device(device_); !e.empty()) throw std::runtime_error(e);
    if (!gpu_) gpu_ = std::make_unique<Gpu>();
    return correlate_pairs_cuda_masked(gpu_->context, gpu_->masked, ip, tp, pairs, options_, done, top);
  }
#endif
  std::vector<xcorr::View> views(n_img);
  for (std::size_t i = 0; i < n_img; ++i) views[i] = image_view(i);
  return xcorr::correlate_image_groups(views, options_.normalize_input, tp, pairs, options_, threads_,
                                       [&](std::size_t n) {
                                         if (done) done(std::int64_t(n));
                                       },
                                       top);
}

// ---- xcorr() --------------------------------------------------------------------

namespace {

[[noreturn]] void bad(const std::string& array, const std::string& why) {
  throw std::invalid_argument(array + ": " + why);
}

std::string shape_text(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

void require_stack(const Array3& a, const char* name, const char* what_dims) {
  if (!a.present()) bad(name, "missing " + std::string(what_dims));
  if (a.size() == 0 || a.shape[0] < 0 || a.shape[1] < 0 || a.shape[2] < 0)
    bad(name, "is empty (dimensions " + shape_text(a.shape) + ")");
}

// The listed frames of a stack [n, h, w] (any type, any strides) as contiguous floats.
std::vector<float> frames_as_float(const Array3& a, std::span<const std::int64_t> frames) {
  const std::int64_t h = a.shape[1], w = a.shape[2];
  std::vector<float> out(frames.size() * std::size_t(h * w));
  for (std::size_t f = 0; f < frames.size(); ++f)
    for (std::int64_t y = 0; y < h; ++y)
      convert_to_float(element(a.data, frames[f] * a.strides[0] + y * a.strides[1]), a.type, a.strides[2], w,
                       out.data() + (f * std::size_t(h) + std::size_t(y)) * std::size_t(w));
  return out;
}

std::vector<std::int64_t> pairs_as_int64(const Array2& pairs) {
  if (!pairs.present()) bad("pairs", "missing [p, 2] (image index, template index)");
  if (pairs.shape[1] != 2 || pairs.shape[0] < 0)
    bad("pairs", "must be [p, 2] (image index, template index), got " + shape_text(pairs.shape));
  std::vector<std::int64_t> out(std::size_t(pairs.shape[0]) * 2);
  try {
    for (std::int64_t p = 0; p < pairs.shape[0]; ++p)
      convert_to_int64(element(pairs.data, p * pairs.strides[0]), pairs.type, pairs.strides[1], 2,
                       out.data() + 2 * p);
  } catch (const std::invalid_argument& e) {
    bad("pairs", e.what());
  }
  return out;
}

// The distinct values of v, increasing.
std::vector<std::int64_t> distinct(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

int index_in(const std::vector<std::int64_t>& sorted, std::int64_t value) {
  return int(std::lower_bound(sorted.begin(), sorted.end(), value) - sorted.begin());
}

// "cpu" or "cuda", and the device, for the backend asked for in this process.
std::pair<std::string, int> choose_backend(const XcorrOptions& o, bool masks) {
  // Masked pairs on the GPU have not yet run on a device: only when asked for.
  if (o.backend == "cpu" || (o.backend == "auto" && masks)) return {"cpu", -1};
#if defined(TESSERA_HAVE_CUDA)
  const cuda::DeviceQuery q = cuda::query_devices();
  const int n = int(q.devices.size());
  const int device = o.device < 0 ? 0 : o.device;
  std::string why_not;
  if (n == 0)
    why_not = "no CUDA device visible" + (q.message.empty() ? "" : " (" + q.message + ")");
  else if (device >= n)
    why_not = "device " + std::to_string(device) + " is not visible (" + std::to_string(n) + " devices)";
  if (why_not.empty()) return {"cuda", device};
#else
  const std::string why_not = "this build has no CUDA backend (nvcc was not found when it was configured)";
#endif
  if (o.backend == "cuda") throw std::invalid_argument("--backend cuda: " + why_not);
  return {"cpu", -1};
}

// The masks of the listed frames as 0/1 bytes (empty when absent); name:
// "image_masks" or "template_masks", checked against the frames' stack.
std::vector<std::uint8_t> masks_as_bytes(const Array3& masks, const Array3& frames_of, const char* name,
                                         const char* what, std::span<const std::int64_t> frames) {
  if (!masks.present()) return {};
  if (std::string e = check_mask_shape(masks.shape, frames_of.shape, what); !e.empty()) bad(name, e);
  const std::int64_t h = masks.shape[1], w = masks.shape[2];
  std::vector<double> values(frames.size() * std::size_t(h * w));
  for (std::size_t f = 0; f < frames.size(); ++f)
    for (std::int64_t y = 0; y < h; ++y)
      convert_to_double(element(masks.data, frames[f] * masks.strides[0] + y * masks.strides[1]), masks.type,
                        masks.strides[2], w, values.data() + (f * std::size_t(h) + std::size_t(y)) * std::size_t(w));
  std::vector<std::uint8_t> out(values.size());
  if (std::string e = mask_to_bytes(values, frames, h, w, out.data()); !e.empty()) bad(name, e);
  return out;
}

}  // namespace

XcorrResult xcorr(const Array3& images, const Array3& templates, const Array2& pairs,
                  const XcorrOptions& options, const Array3& image_masks, const Array3& template_masks) {
  const xcorr::Options opt = options.internal();
  require_stack(images, "images", "[n, H, W]");
  require_stack(templates, "templates", "[k, h, w]");
  const std::vector<std::int64_t> all = pairs_as_int64(pairs);
  const std::int64_t H = images.shape[1], W = images.shape[2], h = templates.shape[1], w = templates.shape[2];
  if (std::string e = check_pair_indices(all, images.shape[0], templates.shape[0]); !e.empty()) bad("pairs", e);
  if (std::string e = check_image_size(H, W); !e.empty()) bad("images", e);
  if (std::string e = check_template_fits(H, W, h, w); !e.empty()) throw std::invalid_argument(e);
  try {
    (void)xcorr::search_region(int(H), int(W), int(h), int(w), opt);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--crop: ") + e.what());
  }
  const bool masked = image_masks.present() || template_masks.present();
  const auto [backend, device] = choose_backend(options, masked);
  if (backend == "cpu" && opt.fft_from_wisdom) {  // before any plan of this call
    const std::pair<int, int> size = xcorr::fft_size(int(H), int(W), int(h), int(w), opt), sizes[] = {size};
    try {
      const xcorr::FftWisdom w = load_or_measure_wisdom(options.fft_wisdom, size, masked);
      if (std::string e = xcorr::import_fft_wisdom(w, sizes, masked); !e.empty())
        throw std::runtime_error("--fft-wisdom " + options.fft_wisdom + ": " + e);
    } catch (const std::runtime_error& e) {
      throw std::invalid_argument(e.what());
    }
  }
  throw_if_cancelled(options.cancel);

  // The frames the pairs use, as floats; pair p in local indices, grouped by image.
  const auto n = std::int64_t(all.size() / 2);
  std::vector<std::int64_t> of_image(static_cast<std::size_t>(n)), of_template(static_cast<std::size_t>(n));
  for (std::size_t p = 0; p < std::size_t(n); ++p) of_image[p] = all[2 * p], of_template[p] = all[2 * p + 1];
  const std::vector<std::int64_t> imgs = distinct(of_image), tpls = distinct(of_template);
  const std::vector<float> img_data = frames_as_float(images, imgs), tpl_data = frames_as_float(templates, tpls);
  if (std::string e = check_finite(img_data, imgs, H, W, "image"); !e.empty()) bad("images", e);
  if (std::string e = check_finite(tpl_data, tpls, h, w, "template"); !e.empty()) bad("templates", e);
  const std::vector<std::uint8_t> img_masks = masks_as_bytes(image_masks, images, "image_masks", "images", imgs),
                                  tpl_masks = masks_as_bytes(template_masks, templates, "template_masks",
                                                             "templates", tpls);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return of_image[std::size_t(a)] < of_image[std::size_t(b)]; });
  std::vector<std::pair<int, int>> local(static_cast<std::size_t>(n));
  for (std::size_t k = 0; k < local.size(); ++k)
    local[k] = {index_in(imgs, of_image[std::size_t(order[k])]), index_in(tpls, of_template[std::size_t(order[k])])};

  // Progress from many threads, one call at a time; the cancel flag at each report.
  std::mutex report;
  auto done = [&](std::int64_t k) {
    throw_if_cancelled(options.cancel);
    if (!options.progress) return;
    std::lock_guard<std::mutex> lock(report);
    options.progress(k);
  };
  PairCorrelator engine(opt, options.thread_count(), backend, device);
  std::vector<core::ZnccBest> top;
  const std::vector<xcorr::Peak> peaks =
      engine.correlate({img_data.data(), std::int64_t(imgs.size()), int(H), int(W),
                        img_masks.empty() ? nullptr : img_masks.data()},
                       {tpl_data.data(), std::int64_t(tpls.size()), int(h), int(w),
                        tpl_masks.empty() ? nullptr : tpl_masks.data()},
                       local, std::vector<std::uint8_t>(tpls.size(), 1), done, &top);
  XcorrResult result;
  const auto K = std::size_t(opt.top_k);
  result.resize(n, opt.top_k);
  for (std::size_t k = 0; k < peaks.size(); ++k)
    result.set(order[k], peaks[k], std::span<const core::ZnccBest>(top).subspan(k * K, K));
  return result;
}

}  // namespace tessera::api

// The drivers of src/xcorr over many pairs and threads (parallel_for,
// correlate_pairs, correlate_image_groups) and the one-image convenience API
// (Correlator, xcorr_map, xcorr_peak): all on the public API of xcorr.hpp.
#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "core/threads.hpp"
#include "pixels.hpp"
#include "xcorr.hpp"

namespace tessera::xcorr {
namespace {

// One Workspace per thread that asks, kept for the whole call (the threads of
// successive parallel_for phases reuse them).
class ThreadWorkspaces {
 public:
  Workspace& mine() {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& w = spaces_[std::this_thread::get_id()];
    if (!w) w = std::make_unique<Workspace>();
    return *w;
  }

 private:
  std::mutex mutex_;
  std::map<std::thread::id, std::unique_ptr<Workspace>> spaces_;
};

// The spectra the templates of `pairs` need (those that cache them), each
// computed once, in parallel: one per template and image shape. A pair whose
// image is masked takes the masked path (masked.hpp), which transforms the
// template's masked arrays instead: it needs no float spectrum.
void transform_templates(std::span<const std::pair<int, int>> pairs,
                         std::span<const PreparedTemplate* const> templates,
                         const std::function<std::pair<int, int>(int)>& image_shape,
                         const std::function<bool(int)>& image_masked, const Options& options, int threads,
                         ThreadWorkspaces& spaces) {
  std::set<std::tuple<int, int, int>> needs;  // template, H, W
  for (const auto& [ii, ti] : pairs) {
    if (image_masked(ii)) continue;
    const auto [H, W] = image_shape(ii);
    needs.emplace(ti, H, W);
  }
  const std::vector<std::tuple<int, int, int>> list(needs.begin(), needs.end());
  parallel_for(list.size(), threads, [&](std::size_t i) {
    const auto [ti, H, W] = list[i];
    templates[std::size_t(ti)]->transform_for(H, W, options, spaces.mine());
  });
}

// Pair i's slice of the top lists (empty without --top or without `top`).
std::span<core::ZnccBest> top_slice(std::vector<core::ZnccBest>* top, const Options& options, std::size_t i) {
  if (!top || options.top_k <= 0) return {};
  const auto k = std::size_t(options.top_k);
  return std::span<core::ZnccBest>(*top).subspan(i * k, k);
}

// *top sized for n pairs (every entry overwritten by its pair).
void size_top(std::vector<core::ZnccBest>* top, const Options& options, std::size_t n) {
  if (top) top->assign(options.top_k > 0 ? n * std::size_t(options.top_k) : 0, missing_top_peak());
}

}  // namespace

void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& f) {
  core::parallel_for(std::int64_t(n), std::max(threads, 1), 1, [&](std::int64_t i) { f(std::size_t(i)); });
}

std::vector<Peak> correlate_pairs(std::span<const PreparedImage* const> images,
                                  std::span<const PreparedTemplate* const> templates,
                                  std::span<const std::pair<int, int>> pairs,
                                  const Options& options, int threads,
                                  const std::function<void(std::size_t)>& done,
                                  std::vector<core::ZnccBest>* top) {
  validate(options);
  const int nt = std::max(1, threads);
  ThreadWorkspaces spaces;
  // Phase 1: the spectra every pair needs, each computed once, in parallel:
  // each image's for each template shape, then the templates'.
  std::set<std::tuple<int, int, int>> image_needs;  // image, h, w
  for (const auto& [ii, ti] : pairs)
    image_needs.emplace(ii, templates[std::size_t(ti)]->height(), templates[std::size_t(ti)]->width());
  const std::vector<std::tuple<int, int, int>> list(image_needs.begin(), image_needs.end());
  parallel_for(list.size(), nt, [&](std::size_t i) {
    const auto [ii, h, w] = list[i];
    images[std::size_t(ii)]->transform_for(h, w, options, spaces.mine());
  });
  transform_templates(
      pairs, templates,
      [&](int ii) { return std::pair{images[std::size_t(ii)]->height(), images[std::size_t(ii)]->width()}; },
      [&](int ii) { return images[std::size_t(ii)]->masked(); }, options, nt, spaces);
  // Phase 2: the pairs.
  std::vector<Peak> out(pairs.size());
  size_top(top, options, pairs.size());
  parallel_for(pairs.size(), nt, [&](std::size_t i) {
    out[i] = correlate(*images[std::size_t(pairs[i].first)], *templates[std::size_t(pairs[i].second)], options,
                       spaces.mine(), nullptr, top_slice(top, options, i));
    if (done) done(1);
  });
  return out;
}

std::vector<Peak> correlate_image_groups(std::span<const View> images, bool normalize_input,
                                         std::span<const PreparedTemplate* const> templates,
                                         std::span<const std::pair<int, int>> pairs,
                                         const Options& options, int threads,
                                         const std::function<void(std::size_t)>& done,
                                         std::vector<core::ZnccBest>* top) {
  validate(options);
  // Groups: maximal runs of pairs with the same image.
  std::vector<std::size_t> starts;
  std::vector<char> seen(images.size(), 0);
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (i > 0 && pairs[i].first == pairs[i - 1].first) continue;
    const std::size_t image = std::size_t(pairs[i].first);
    if (seen.at(image)) throw std::invalid_argument("xcorr: correlate_image_groups needs the pairs grouped by image");
    seen[image] = 1;
    starts.push_back(i);
  }
  starts.push_back(pairs.size());
  const std::size_t n_groups = starts.size() - 1;
  const int nt = std::max(1, threads);
  if (n_groups < std::size_t(nt)) {
    std::vector<std::unique_ptr<PreparedImage>> prepared(images.size());
    std::vector<const PreparedImage*> ip(images.size(), nullptr);
    std::vector<std::size_t> used;
    for (std::size_t g = 0; g < n_groups; ++g) used.push_back(std::size_t(pairs[starts[g]].first));
    parallel_for(used.size(), nt, [&](std::size_t k) {
      prepared[used[k]] = std::make_unique<PreparedImage>(images[used[k]], normalize_input);
    });
    for (std::size_t i = 0; i < images.size(); ++i) ip[i] = prepared[i].get();
    return correlate_pairs(ip, templates, pairs, options, threads, done, top);
  }
  // Template spectra first (each once, in parallel), then the groups.
  std::vector<char> image_masked(images.size(), 0);
  for (std::size_t g = 0; g < n_groups; ++g) {
    const auto ii = std::size_t(pairs[starts[g]].first);
    image_masked[ii] = detail::has_invalid_pixel(images[ii]);
  }
  ThreadWorkspaces spaces;
  transform_templates(
      pairs, templates,
      [&](int ii) { return std::pair{images[std::size_t(ii)].height, images[std::size_t(ii)].width}; },
      [&](int ii) { return image_masked[std::size_t(ii)] != 0; }, options, nt, spaces);
  std::vector<Peak> out(pairs.size());
  size_top(top, options, pairs.size());
  parallel_for(n_groups, nt, [&](std::size_t g) {
    const PreparedImage image(images[std::size_t(pairs[starts[g]].first)], normalize_input);
    Workspace& ws = spaces.mine();
    for (std::size_t i = starts[g]; i < starts[g + 1]; ++i) {
      out[i] = correlate(image, *templates[std::size_t(pairs[i].second)], options, ws, nullptr,
                         top_slice(top, options, i));
      if (done) done(1);
    }
  });
  return out;
}

// ---------------------------------------------------------------------------
Correlator::Correlator(Options options) : options_(options), workspace_(std::make_unique<Workspace>()) {
  validate(options_);
}
Correlator::~Correlator() = default;

void Correlator::set_image(View image) {
  image_.reset();
  image_ = std::make_unique<PreparedImage>(image, options_.normalize_input);
}

std::vector<float> Correlator::map(View templ) {
  if (!image_) throw std::logic_error("xcorr: set_image must be called before correlating");
  PreparedTemplate t(templ, false);
  std::vector<float> m;
  Options o = options_;
  o.crop_y = o.crop_x = 0;  // the whole map is computed; the region only has to exist
  o.mode = Mode::full;
  correlate(*image_, t, o, *workspace_, &m);
  return m;
}

Peak Correlator::peak(View templ) {
  if (!image_) throw std::logic_error("xcorr: set_image must be called before correlating");
  PreparedTemplate t(templ, false);
  return correlate(*image_, t, options_, *workspace_);
}

std::vector<float> xcorr_map(View image, View templ, const Options& options) {
  Correlator c(options);
  c.set_image(image);
  return c.map(templ);
}

Peak xcorr_peak(View image, View templ, const Options& options) {
  Correlator c(options);
  c.set_image(image);
  return c.peak(templ);
}

}  // namespace tessera::xcorr

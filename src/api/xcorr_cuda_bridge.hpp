// The CPU side's prepared images and templates in the plain structs of the GPU
// xcorr backend (cuda/xcorr_cuda.hpp takes no src/xcorr types, so that nvcc
// never sees them): image pixels, centre and flat bound (the device builds the
// image tables), template pixels, mean and prefix table (uploaded). The search
// region and the FFT size come from the CPU's own functions, so both backends
// search the same placements at the same transform size.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cuda/xcorr_cuda.hpp"
#include "cuda/xcorr_masked_cuda.hpp"
#include "xcorr/xcorr.hpp"

namespace tessera::api {

// --top on the GPU: the device hands each pair's normalised searched region
// back, and xcorr::top_candidates (the CPU's function) finds its candidates
// there, so the same map gives the same candidates. Returns the callback that
// fills *top ([pairs][top_k], sized here), or none without --top.
inline std::function<void(std::int64_t, const float*)> top_from_regions(const xcorr::Options& options,
                                                                      xcorr::Region r, std::size_t n_pairs,
                                                                      std::vector<core::ZnccBest>* top) {
  if (!top || options.top_k <= 0) return {};
  const auto k = std::size_t(options.top_k);
  top->assign(n_pairs * k, xcorr::missing_top_peak());
  const xcorr::Region dense{0, r.y1 - r.y0, 0, r.x1 - r.x0};  // the region alone, at the origin
  return [top, k, r, dense, d = options.min_distance](std::int64_t p, const float* map) {
    const std::span<core::ZnccBest> mine = std::span<core::ZnccBest>(*top).subspan(std::size_t(p) * k, k);
    xcorr::top_candidates(map, dense.x1 + 1, dense, d, mine);
    for (core::ZnccBest& c : mine)  // back to the full-map frame (a shift keeps the order)
      if (c.y >= 0) c.y += r.y0, c.x += r.x0;
  };
}

// xcorr::correlate_pairs on the GPU: the same pairs, options and result order
// (and *top as correlate_pairs fills it). Every image must have one shape and
// every template one shape.
inline std::vector<xcorr::Peak> correlate_pairs_cuda(
    cuda::XcorrCuda& gpu, std::span<const xcorr::PreparedImage* const> images,
    std::span<const xcorr::PreparedTemplate* const> templates,
    std::span<const std::pair<int, int>> pairs, const xcorr::Options& options,
    const std::function<void(std::int64_t)>& done = {}, std::vector<core::ZnccBest>* top = nullptr) {
  xcorr::validate(options);
  if (pairs.empty()) return {};
  const int H = images[0]->height(), W = images[0]->width();
  const int h = templates[0]->height(), w = templates[0]->width();
  for (const auto* im : images)
    if (im->height() != H || im->width() != W)
      throw std::invalid_argument("xcorr: the GPU backend takes images of one shape per call");
  for (const auto* t : templates)
    if (t->height() != h || t->width() != w)
      throw std::invalid_argument("xcorr: the GPU backend takes templates of one shape per call");
  if (h > H || w > W)
    throw std::invalid_argument("xcorr: template " + std::to_string(h) + "x" + std::to_string(w) +
                                " is larger than the image " + std::to_string(H) + "x" +
                                std::to_string(W) + " (as normxcorr2, h <= H and w <= W)");
  const xcorr::Region r = xcorr::search_region(H, W, h, w, options);
  const auto [py, px] = xcorr::fft_size(H, W, h, w, options);

  std::vector<cuda::XcorrImageDesc> im(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    const xcorr::ImageData e = xcorr::image_data(*images[i]);
    im[i] = {e.pixels.data(), e.height, e.width, e.centre, e.flat_bound, e.fft_exp};
  }
  std::vector<cuda::XcorrTemplateDesc> tp(templates.size());
  for (std::size_t i = 0; i < templates.size(); ++i)
    tp[i] = {xcorr::template_pixels(*templates[i]).data(), xcorr::template_mean(*templates[i]),
             xcorr::zncc_stats(*templates[i])};
  std::vector<std::int32_t> flat(2 * pairs.size());
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    flat[2 * p] = pairs[p].first;
    flat[2 * p + 1] = pairs[p].second;
  }
  cuda::XcorrPairsDesc d;
  d.images = im.data();
  d.n_images = int(im.size());
  d.templates = tp.data();
  d.n_templates = int(tp.size());
  d.pairs = flat.data();
  d.n_pairs = std::int64_t(pairs.size());
  d.fft_rows = py;
  d.fft_cols = px;
  d.region = {r.y0, r.y1, r.x0, r.x1};
  d.eps = options.eps;
  d.min_overlap = options.min_overlap;
  d.exclusion = options.exclusion;
  d.region_map = top_from_regions(options, r, pairs.size(), top);
  std::vector<cuda::XcorrPeakDesc> raw(pairs.size());
  gpu.correlate(d, raw.data(), done);
  std::vector<xcorr::Peak> out(pairs.size());
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    const cuda::XcorrPeakDesc& q = raw[p];
    out[p] = {q.y, q.x, q.value, q.sub_y, q.sub_x, q.sharpness, q.peak_ratio};
  }
  return out;
}

// correlate_pairs_cuda for a set that may hold masked pairs (either side
// masked()): those run the host's masked path (xcorr::correlate, so the same
// sums, bounds, R, peak and --top code as on the CPU) with its double
// correlations done by cuFFT (masked_gpu); the others as above. Results in the
// order of the pairs.
inline std::vector<xcorr::Peak> correlate_pairs_cuda_masked(
    cuda::XcorrCuda& gpu, cuda::MaskedCorrelatorCuda& masked_gpu,
    std::span<const xcorr::PreparedImage* const> images, std::span<const xcorr::PreparedTemplate* const> templates,
    std::span<const std::pair<int, int>> pairs, const xcorr::Options& options,
    const std::function<void(std::int64_t)>& done = {}, std::vector<core::ZnccBest>* top = nullptr) {
  std::vector<std::size_t> plain, masked;
  for (std::size_t p = 0; p < pairs.size(); ++p)
    (images[std::size_t(pairs[p].first)]->masked() || templates[std::size_t(pairs[p].second)]->masked() ? masked
                                                                                                          : plain)
        .push_back(p);
  if (masked.empty()) return correlate_pairs_cuda(gpu, images, templates, pairs, options, done, top);
  const auto k = std::size_t(options.top_k > 0 ? options.top_k : 0);
  if (top) top->assign(pairs.size() * k, xcorr::missing_top_peak());
  std::vector<xcorr::Peak> out(pairs.size());
  if (!plain.empty()) {
    std::vector<std::pair<int, int>> sub;
    for (std::size_t p : plain) sub.push_back(pairs[p]);
    std::vector<core::ZnccBest> sub_top;
    const std::vector<xcorr::Peak> got =
        correlate_pairs_cuda(gpu, images, templates, sub, options, done, top ? &sub_top : nullptr);
    for (std::size_t q = 0; q < plain.size(); ++q) {
      out[plain[q]] = got[q];
      if (top && k) std::copy_n(sub_top.begin() + std::ptrdiff_t(q * k), k, top->begin() + std::ptrdiff_t(plain[q] * k));
    }
  }
  xcorr::Workspace ws;
  ws.set_masked_correlator([&masked_gpu](const double* a, const double* b, int py, int px, double* o) {
    masked_gpu.correlate(a, b, py, px, o);
  });
  for (std::size_t p : masked) {
    const std::span<core::ZnccBest> mine =
        top && k ? std::span<core::ZnccBest>(*top).subspan(p * k, k) : std::span<core::ZnccBest>{};
    out[p] = xcorr::correlate(*images[std::size_t(pairs[p].first)], *templates[std::size_t(pairs[p].second)],
                              options, ws, nullptr, mine);
    if (done) done(1);
  }
  return out;
}

}  // namespace tessera::api

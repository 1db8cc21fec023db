#include "xcorr_batches.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include "api/xcorr.hpp"
#include "io/error.hpp"
#include "mpi/collectives.hpp"

namespace tessera::cli::xcorr_job {
namespace {

// ---- the memory model of a rank's batches (what --memory-budget bounds) ----------
// Estimates of the large buffers only, each constant named for what it counts.

// An image or template while it is correlated: its pixels as read and the
// prepared object's own float copy (centred or not).
constexpr std::uint64_t kPreparedPixelBytes = 2 * sizeof(float);
// An image's two prefix tables (sums and sums of squares), doubles over (H+1) x (W+1).
constexpr std::uint64_t kImagePrefixCellBytes = 2 * sizeof(double);
// A template's one prefix table (its centred values), doubles over (h+1) x (w+1).
constexpr std::uint64_t kTemplatePrefixCellBytes = sizeof(double);
// A bin of a real-to-complex spectrum: a complex float.
constexpr std::uint64_t kSpectrumBinBytes = 2 * sizeof(float);
// An image's window table: one float per searched placement.
constexpr std::uint64_t kWindowCellBytes = sizeof(float);
// A thread's workspace: the transform's real buffer (one float per cell of the
// padded size) and two spectra (the product, and an uncached template's).
constexpr std::uint64_t kWorkspaceRealBytes = sizeof(float);
constexpr std::uint64_t kWorkspaceSpectra = 2;
// An image waiting in a batch: on the CPU only as read, since each thread
// prepares the image it takes; the GPU path prepares the batch's images all at
// once, without host tables or spectra: as read and as prepared.
constexpr std::uint64_t kWaitingPixelBytesCpu = sizeof(float);
constexpr std::uint64_t kWaitingPixelBytesGpu = 2 * sizeof(float);
// Of the budget left after the workspaces, the batch's images take up to half,
// and the images with the kept template spectra up to three quarters (the
// spectra take what the batch's images leave); the last quarter is left for
// what the model does not count (results, HDF5 buffers, allocator slack).
constexpr std::uint64_t kImageShareDivisor = 2;
constexpr std::uint64_t kCacheShareNumerator = 3, kCacheShareDenominator = 4;
// Masked pairs (src/xcorr/masked.hpp), on top of the above: per image and per
// template, its three masked arrays' prefix tables (doubles over (rows+1) x
// (cols+1)), up to three double spectra and the mask itself (a byte a pixel,
// read as a float, or a double for float64 masks), and for an image its window
// sums (count, sum, variance term: three doubles per searched placement); per
// thread, up to six double transform outputs and two double spectra (a
// masked template's window sums beside an unmasked image are computed a map
// row at a time).
constexpr std::uint64_t kMaskedPrefixCellBytes = 3 * sizeof(double);
constexpr std::uint64_t kMaskedSpectra = 3;
constexpr std::uint64_t kMaskedSpectrumBinBytes = 2 * sizeof(double);
constexpr std::uint64_t kMaskPixelBytes = 1 + sizeof(double);
constexpr std::uint64_t kMaskedWorkspaceRealBytes = 6 * sizeof(double);
constexpr std::uint64_t kMaskedWorkspaceSpectra = 2;
constexpr std::uint64_t kMaskedWindowCellBytes = 3 * sizeof(double);
// In the split of the pairs over ranks, taking up an image (its read, prefix
// sums and transform) costs about as much as correlating two pairs.
constexpr double kImageCostInPairs = 2.0;

// Collective: the masks of the listed frames of dataset m (when given) as 0/1
// bytes; "" or the one-line reason for a bad value.
std::string read_masks(io::InputFile& in, const std::string& input, const io::DatasetInfo& m,
                       std::span<const std::int64_t> frames, std::size_t plane, std::vector<std::uint8_t>& out) {
  if (m.name.empty()) return {};
  const std::int64_t cols = std::int64_t(m.dims[2]), rows = std::int64_t(m.dims[1]);
  out.resize(frames.size() * plane);
  // Read as float (half the memory of double) unless float64, where a tiny
  // nonzero value could become 0 in float.
  auto convert = [&](auto& values) {
    in.read_frames(m.name, frames, values);
    return api::mask_to_bytes(std::span(std::as_const(values)), frames, rows, cols, out.data());
  };
  std::string e;
  if (m.type == "float64") {
    std::vector<double> values(frames.size() * plane);
    e = convert(values);
  } else {
    std::vector<float> values(frames.size() * plane);
    e = convert(values);
  }
  return e.empty() ? e : io::message(input, m.name, e);
}

}  // namespace

// Collective (the number of rounds is agreed).
BatchPlan plan_batches(MPI_Comm comm, const RunContext& ctx, const JobPart& j, const InputLayout& s,
                       const xcorr::Options& opt, std::uint64_t budget, int threads, bool gpu) {
  BatchPlan b;
  b.image_of.resize(std::size_t(j.n_pairs));
  for (std::int64_t p = 0; p < j.n_pairs; ++p) b.image_of[std::size_t(p)] = j.pairs[std::size_t(2 * p)];
  auto shares = mpi::assign_pairs(b.image_of, ctx.size, kImageCostInPairs);
  b.mine = std::move(shares[std::size_t(ctx.rank)]);
  b.fft = xcorr::fft_size(s.H, s.W, s.h, s.w, opt);
  const auto py = std::uint64_t(b.fft.first), px = std::uint64_t(b.fft.second);
  const auto H = std::uint64_t(s.H), W = std::uint64_t(s.W), h = std::uint64_t(s.h), w = std::uint64_t(s.w);
  const std::uint64_t spectrum_bytes = py * (px / 2 + 1) * kSpectrumBinBytes;
  std::uint64_t image_bytes =
      H * W * kPreparedPixelBytes + (H + 1) * (W + 1) * kImagePrefixCellBytes + spectrum_bytes +
      std::uint64_t(s.region.y1 - s.region.y0 + 1) * std::uint64_t(s.region.x1 - s.region.x0 + 1) * kWindowCellBytes;
  b.bytes_per_template = spectrum_bytes + h * w * kPreparedPixelBytes + (h + 1) * (w + 1) * kTemplatePrefixCellBytes;
  std::uint64_t thread_bytes = py * px * kWorkspaceRealBytes + kWorkspaceSpectra * spectrum_bytes;
  if (s.masked()) {  // either side's pairs may take the masked path
    const std::uint64_t masked_spectrum = py * (px / 2 + 1) * kMaskedSpectrumBinBytes;
    const std::uint64_t windows =
        std::uint64_t(s.region.y1 - s.region.y0 + 1) * std::uint64_t(s.region.x1 - s.region.x0 + 1) * kMaskedWindowCellBytes;
    image_bytes += (H + 1) * (W + 1) * kMaskedPrefixCellBytes + kMaskedSpectra * masked_spectrum +
                   H * W * kMaskPixelBytes + windows;
    b.bytes_per_template +=
        (h + 1) * (w + 1) * kMaskedPrefixCellBytes + kMaskedSpectra * masked_spectrum + h * w * kMaskPixelBytes;
    thread_bytes += py * px * kMaskedWorkspaceRealBytes + kMaskedWorkspaceSpectra * masked_spectrum;
  }
  // Per thread: its workspace and, on the CPU, the one image it has prepared.
  const std::uint64_t workspace_bytes = std::uint64_t(threads) * (thread_bytes + (gpu ? 0 : image_bytes));
  const std::uint64_t waiting_bytes = H * W * (gpu ? kWaitingPixelBytesGpu : kWaitingPixelBytesCpu);
  const std::uint64_t free_bytes = budget > workspace_bytes ? budget - workspace_bytes : 0;
  const std::int64_t max_images =
      std::max<std::int64_t>(1, std::int64_t(free_bytes / kImageShareDivisor / waiting_bytes));
  b.cache_share_bytes = free_bytes / kCacheShareDenominator * kCacheShareNumerator;
  b.workspace_bytes = workspace_bytes;
  b.waiting_bytes = waiting_bytes;
  b.batches = mpi::batch_by_image(b.mine, b.image_of, max_images);
  b.n_rounds = std::int64_t(b.batches.size());
  b.n_rounds = mpi::max_all(comm, b.n_rounds);
  return b;
}


std::vector<std::uint8_t> kept_templates(const BatchPlan& plan, std::size_t n_imgs, std::size_t n_tpls,
                                         std::span<const std::pair<int, int>> local) {
  const std::uint64_t images = std::uint64_t(n_imgs) * plan.waiting_bytes;
  const std::uint64_t room = plan.cache_share_bytes > images ? plan.cache_share_bytes - images : 0;
  const std::size_t fit = plan.bytes_per_template ? std::size_t(room / plan.bytes_per_template) : n_tpls;
  std::vector<std::uint8_t> keep(n_tpls, fit >= n_tpls ? 1 : 0);
  if (fit >= n_tpls || fit == 0) return keep;
  std::vector<std::int64_t> uses(n_tpls, 0);
  for (const auto& [i, t] : local) ++uses[std::size_t(t)];
  std::vector<std::size_t> order(n_tpls);
  for (std::size_t t = 0; t < n_tpls; ++t) order[t] = t;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return uses[a] > uses[b]; });
  for (std::size_t k = 0; k < fit; ++k) keep[order[k]] = 1;
  return keep;
}

// Masked pairs recompute an unkept template's double spectra for every pair
// (two or three transforms as large as the pair's own): say so, once, with a
// budget that keeps them all (rank 0, not with --quiet). A batch keeps the
// spectra of as many templates as fit beside its images (kept_templates). The
// budget given is enough whatever batches it makes: one whose share holds all
// of a rank's images and templates at once holds every part of them (for the
// rank that needs the most). Collective.
void note_template_cache(MPI_Comm comm, const RunContext& ctx, const XcorrRequest& r, const InputLayout& s,
                         const JobPart& j, const BatchPlan& plan, std::uint64_t budget) {
  if (!s.masked()) return;
  auto need_of = [&](std::int64_t begin, std::int64_t end) {  // images and templates of mine[begin, end)
    std::vector<std::int64_t> imgs, tpls;
    for (std::int64_t k = begin; k < end; ++k) {
      const std::size_t p = std::size_t(plan.mine[std::size_t(k)]);
      imgs.push_back(j.pairs[2 * p]);
      tpls.push_back(j.pairs[2 * p + 1]);
    }
    for (auto* v : {&imgs, &tpls}) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    return std::uint64_t(imgs.size()) * plan.waiting_bytes + std::uint64_t(tpls.size()) * plan.bytes_per_template;
  };
  bool short_of_room = false;
  for (const mpi::PairBatch& b : plan.batches) short_of_room = short_of_room || need_of(b.begin, b.end) > plan.cache_share_bytes;
  // The share is free / 4 * 3 of what the budget leaves beyond the workspaces.
  const std::uint64_t all = need_of(0, std::int64_t(plan.mine.size()));
  const std::uint64_t enough = plan.workspace_bytes +
                               (all + kCacheShareNumerator - 1) / kCacheShareNumerator * kCacheShareDenominator;
  const bool any_short = mpi::max_all(comm, std::int64_t(short_of_room ? 1 : 0)) != 0;
  const auto most = std::uint64_t(mpi::max_all(comm, std::int64_t(enough)));
  if (!ctx.is_root() || r.quiet || !any_short) return;
  std::fprintf(stderr,
               "tessera: note: the templates' spectra do not fit --memory-budget %s, so masked pairs recompute "
               "some of them (slower); %s per rank keeps them all\n",
               mpi::format_size(budget).c_str(), mpi::format_size(most, /*round_up=*/true).c_str());
}

// Collective: every rank joins the reads, with its batch or with none.
BatchData read_batch(io::InputFile& in, const XcorrRequest& r, const InputLayout& s, const JobPart& j,
                     const BatchPlan& plan, std::int64_t round) {
  BatchData b;
  if (round < std::int64_t(plan.batches.size())) {
    const mpi::PairBatch& pb = plan.batches[std::size_t(round)];
    b.pairs = std::span<const std::int64_t>(plan.mine).subspan(std::size_t(pb.begin), std::size_t(pb.end - pb.begin));
  }
  for (std::int64_t p : b.pairs) {
    b.imgs.push_back(j.pairs[std::size_t(2 * p)]);
    b.tpls.push_back(j.pairs[std::size_t(2 * p + 1)]);
  }
  for (auto* v : {&b.imgs, &b.tpls}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  b.img_data.resize(b.imgs.size() * std::size_t(s.H) * std::size_t(s.W));
  b.tpl_data.resize(b.tpls.size() * std::size_t(s.h) * std::size_t(s.w));
  in.read_frames(r.images, b.imgs, b.img_data);
  in.read_frames(r.templates, b.tpls, b.tpl_data);
  // Only the masks of the frames this rank's pairs use, in the same rounds.
  const std::string bad_image_mask =
      read_masks(in, r.input, s.image_masks, b.imgs, std::size_t(s.H) * std::size_t(s.W), b.img_masks);
  const std::string bad_template_mask =
      read_masks(in, r.input, s.template_masks, b.tpls, std::size_t(s.h) * std::size_t(s.w), b.tpl_masks);
  std::string bad = api::check_finite(b.img_data, b.imgs, s.H, s.W, "image");
  if (!bad.empty()) bad = io::message(r.input, s.images.name, bad);
  else if (bad = api::check_finite(b.tpl_data, b.tpls, s.h, s.w, "template"); !bad.empty())
    bad = io::message(r.input, s.templates.name, bad);
  else if (!bad_image_mask.empty()) bad = bad_image_mask;
  else bad = bad_template_mask;
  io::throw_if_any(in.comm(), bad);
  return b;
}

}  // namespace tessera::cli::xcorr_job

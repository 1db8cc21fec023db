// Internal to `tessera xcorr` (xcorr_job.cpp): what the input holds, this
// job's share of the pairs, and the rank's batches: the memory model that
// --memory-budget bounds, the plan of batches, and their collective reads.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "core/no_init_vector.hpp"

#include "command.hpp"
#include "io/h5_input.hpp"
#include "mpi/decomposition.hpp"
#include "mpi/pairs.hpp"
#include "part.hpp"
#include "xcorr/xcorr.hpp"
#include "xcorr_job.hpp"

namespace tessera::cli::xcorr_job {

// What the input holds, checked as the library checks it.
struct InputLayout {
  io::DatasetInfo images, templates, pairs;
  io::DatasetInfo image_masks, template_masks;  // name empty: not given
  bool masked() const { return !image_masks.name.empty() || !template_masks.name.empty(); }
  std::vector<std::int64_t> all_pairs;  // [p][2]: image, template
  std::int64_t n_img = 0, n_tpl = 0;
  int H = 0, W = 0, h = 0, w = 0;
  xcorr::Region region{};
};

// This job's share of the pair list: part I of N covers the pairs
// split_rows(total, N, I-1); results are per pair, so merged parts equal a
// whole run bit for bit (part.hpp).
struct JobPart {
  Part part;
  mpi::Range band;
  std::int64_t total_pairs = 0;
  std::vector<std::int64_t> pairs;  // [n_pairs][2]; index p is pair band.begin + p
  std::int64_t n_pairs = 0;
};

// This rank's pairs in batches whose images fit the budget, and the budget of
// the template spectra cache.
struct BatchPlan {
  std::vector<std::int64_t> image_of;  // image of each of the job's pairs
  std::vector<std::int64_t> mine;      // this rank's pairs, ordered by (image, index)
  std::vector<mpi::PairBatch> batches;  // ranges of `mine`
  std::int64_t n_rounds = 0;  // the most batches of any rank: every rank joins every read
  // What a batch's images and kept template spectra may take together (the
  // images as read: waiting_bytes each), and a template's bytes when kept.
  std::uint64_t cache_share_bytes = 0, waiting_bytes = 0, bytes_per_template = 0;
  std::uint64_t workspace_bytes = 0;  // the threads' workspaces, outside the share
  std::pair<int, int> fft{};
};

// One round's pairs and the distinct images and templates they use, read.
struct BatchData {
  std::span<const std::int64_t> pairs;  // indices into the job's pairs
  std::vector<std::int64_t> imgs, tpls;  // increasing
  core::NoInitVector<float> img_data, tpl_data;  // filled by the read, not zeroed first
  std::vector<std::uint8_t> img_masks, tpl_masks;  // 0/1 per pixel; empty without masks
};

// The templates of a batch (local indices into its templates, n_tpls of them)
// whose spectra it keeps, a flag each: as many as fit beside the batch's n_imgs
// images in plan.cache_share_bytes, the most used by `local` first (ties: the
// lower index). Deterministic; the bits do not depend on it.
std::vector<std::uint8_t> kept_templates(const BatchPlan& plan, std::size_t n_imgs, std::size_t n_tpls,
                                         std::span<const std::pair<int, int>> local);

// Collective (the number of rounds is agreed).
BatchPlan plan_batches(MPI_Comm comm, const RunContext& ctx, const JobPart& j, const InputLayout& s,
                       const xcorr::Options& opt, std::uint64_t budget, int threads, bool gpu);

// Masked pairs recompute an unkept template's double spectra for every pair:
// a one-line note on rank 0 (not with --quiet) with a budget that keeps them
// all. Collective.
void note_template_cache(MPI_Comm comm, const RunContext& ctx, const XcorrRequest& r, const InputLayout& s,
                         const JobPart& j, const BatchPlan& plan, std::uint64_t budget);

// Collective: every rank joins the reads, with its batch or with none.
BatchData read_batch(io::InputFile& in, const XcorrRequest& r, const InputLayout& s, const JobPart& j,
                     const BatchPlan& plan, std::int64_t round);

}  // namespace tessera::cli::xcorr_job

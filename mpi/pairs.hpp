// Distribution of an xcorr pair list over MPI ranks. Pure functions (no MPI, no
// I/O): every rank computes every rank's share from the same pair list.
//
// Pairs are grouped by image, so that a rank transforms each of its images once
// for all the templates paired with it, and the groups are cut into contiguous
// shares of about equal estimated cost: one unit per pair, plus `image_cost`
// units each time a rank takes up an image (reading it, its prefix sums and its
// transform). A group larger than a share is split between ranks, each of which
// then prepares that image. More ranks than pairs leaves ranks with nothing.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tessera::mpi {

// For each rank, the indices of its pairs into the pair list, ordered by
// (image, index). image_of_pair[i] is the image index of pair i (any int64;
// only equality and order matter). Throws std::invalid_argument for size < 1
// or image_cost < 0.
[[nodiscard]] std::vector<std::vector<std::int64_t>> assign_pairs(
    std::span<const std::int64_t> image_of_pair, int size, double image_cost);

// Cuts a rank's ordered pairs (as assign_pairs returns them) into batches of
// at most `max_images` distinct images each, never splitting an image's pairs
// between batches: the half-open ranges [begin, end) of positions in `mine`.
// No batches for no pairs. Throws std::invalid_argument for max_images < 1.
struct PairBatch {
  std::int64_t begin = 0, end = 0;
};
[[nodiscard]] std::vector<PairBatch> batch_by_image(std::span<const std::int64_t> mine,
                                                    std::span<const std::int64_t> image_of_pair,
                                                    std::int64_t max_images);

}  // namespace tessera::mpi

#include "pairs.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace tessera::mpi {

std::vector<std::vector<std::int64_t>> assign_pairs(std::span<const std::int64_t> image_of_pair,
                                                    int size, double image_cost) {
  if (size < 1) throw std::invalid_argument("assign_pairs: size must be >= 1");
  if (!(image_cost >= 0)) throw std::invalid_argument("assign_pairs: image_cost must be >= 0");
  const std::int64_t n = std::int64_t(image_of_pair.size());
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return image_of_pair[std::size_t(a)] < image_of_pair[std::size_t(b)];
  });
  // Cost of each pair in order: 1, plus image_cost for the first of its image.
  std::vector<double> cum(static_cast<std::size_t>(n) + 1, 0.0);
  for (std::int64_t k = 0; k < n; ++k) {
    const bool first = k == 0 || image_of_pair[std::size_t(order[std::size_t(k)])] !=
                                     image_of_pair[std::size_t(order[std::size_t(k - 1)])];
    cum[std::size_t(k) + 1] = cum[std::size_t(k)] + 1.0 + (first ? image_cost : 0.0);
  }
  const double total = cum.back();
  std::vector<std::vector<std::int64_t>> shares(static_cast<std::size_t>(size));
  // Pair k goes to the rank whose share of [0, total) holds the middle of its cost.
  for (std::int64_t k = 0; k < n; ++k) {
    const double mid = 0.5 * (cum[std::size_t(k)] + cum[std::size_t(k) + 1]);
    int r = int(mid / total * size);
    r = std::clamp(r, 0, size - 1);
    shares[std::size_t(r)].push_back(order[std::size_t(k)]);
  }
  return shares;
}

std::vector<PairBatch> batch_by_image(std::span<const std::int64_t> mine,
                                      std::span<const std::int64_t> image_of_pair,
                                      std::int64_t max_images) {
  if (max_images < 1) throw std::invalid_argument("batch_by_image: max_images must be >= 1");
  std::vector<PairBatch> batches;
  std::int64_t images = 0;
  for (std::int64_t k = 0; k < std::int64_t(mine.size()); ++k) {
    const bool new_image = k == 0 || image_of_pair[std::size_t(mine[std::size_t(k)])] !=
                                         image_of_pair[std::size_t(mine[std::size_t(k - 1)])];
    if (new_image) {
      if (batches.empty() || images == max_images) {
        batches.push_back({k, k});
        images = 0;
      }
      ++images;
    }
    batches.back().end = k + 1;
  }
  return batches;
}

}  // namespace tessera::mpi

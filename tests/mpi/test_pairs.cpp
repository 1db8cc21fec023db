// Distribution of xcorr pairs over ranks (mpi/pairs): every pair exactly once,
// grouped by image, balanced by cost, and batches that never split an image.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "mpi/pairs.hpp"

using namespace tessera::mpi;

namespace {

// Cost of a share as the docs define it: 1 per pair + image_cost per distinct image.
double share_cost(const std::vector<std::int64_t>& share, const std::vector<std::int64_t>& img,
                  double image_cost) {
  std::set<std::int64_t> images;
  for (auto p : share) images.insert(img[std::size_t(p)]);
  return double(share.size()) + image_cost * double(images.size());
}

}  // namespace

TEST(Pairs, EveryPairOnceOrderedByImageThenIndex) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> d(0, 11);
  std::vector<std::int64_t> img(200);
  for (auto& v : img) v = d(rng);
  for (int size : {1, 2, 3, 7, 64, 500}) {
    const auto shares = assign_pairs(img, size, 1.5);
    ASSERT_EQ(shares.size(), std::size_t(size));
    std::vector<int> seen(img.size(), 0);
    std::int64_t last_image = -1;
    for (const auto& s : shares) {
      for (std::size_t k = 0; k < s.size(); ++k) {
        ++seen[std::size_t(s[k])];
        if (k > 0) {
          const auto a = s[k - 1], b = s[k];
          EXPECT_TRUE(img[a] < img[b] || (img[a] == img[b] && a < b)) << "size " << size;
        }
      }
      // Shares are contiguous in (image, index) order: images never go back.
      if (!s.empty()) {
        EXPECT_GE(img[std::size_t(s.front())], last_image);
        last_image = img[std::size_t(s.back())];
      }
    }
    for (int c : seen) EXPECT_EQ(c, 1) << "size " << size;
  }
}

TEST(Pairs, SharesAreBalancedByCost) {
  // 24 images with 1..13 pairs each (uneven groups), 3 ranks.
  std::vector<std::int64_t> img;
  for (int i = 0; i < 24; ++i)
    for (int k = 0; k < 1 + (i * 5) % 13; ++k) img.push_back(i);
  std::shuffle(img.begin(), img.end(), std::mt19937(9));
  double total = 0;
  {
    std::set<std::int64_t> all(img.begin(), img.end());
    total = double(img.size()) + 2.0 * double(all.size());
  }
  for (int size : {2, 3, 7}) {
    const auto shares = assign_pairs(img, size, 2.0);
    for (const auto& s : shares) {
      // Within one pair plus one image of the ideal share (split groups pay
      // their image twice).
      EXPECT_LE(share_cost(s, img, 2.0), total / size + 1.0 + 2.0 * 2) << "size " << size;
      EXPECT_GE(share_cost(s, img, 2.0), total / size - 1.0 - 2.0 * 2) << "size " << size;
    }
  }
}

TEST(Pairs, MoreRanksThanPairsAndEmptyLists) {
  const std::vector<std::int64_t> img{5, 5, 2};
  const auto shares = assign_pairs(img, 7, 1.0);
  std::size_t n = 0, nonempty = 0;
  for (const auto& s : shares) n += s.size(), nonempty += !s.empty();
  EXPECT_EQ(n, 3u);
  EXPECT_LE(nonempty, 3u);
  EXPECT_EQ(assign_pairs({}, 3, 1.0), std::vector<std::vector<std::int64_t>>(3));
  EXPECT_THROW(assign_pairs(img, 0, 1.0), std::invalid_argument);
  EXPECT_THROW(assign_pairs(img, 2, -1.0), std::invalid_argument);
}

TEST(Pairs, BatchesHoldAtMostNImagesAndNeverSplitOne) {
  const std::vector<std::int64_t> img{0, 0, 1, 2, 2, 2, 3, 4, 4};
  const std::vector<std::int64_t> mine{0, 1, 2, 3, 4, 5, 6, 7, 8};
  const auto b = batch_by_image(mine, img, 2);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].begin, 0); EXPECT_EQ(b[0].end, 3);  // images 0, 1
  EXPECT_EQ(b[1].begin, 3); EXPECT_EQ(b[1].end, 7);  // images 2, 3
  EXPECT_EQ(b[2].begin, 7); EXPECT_EQ(b[2].end, 9);  // image 4
  EXPECT_EQ(batch_by_image(mine, img, 100).size(), 1u);
  EXPECT_TRUE(batch_by_image({}, img, 2).empty());
  EXPECT_THROW(batch_by_image(mine, img, 0), std::invalid_argument);
}

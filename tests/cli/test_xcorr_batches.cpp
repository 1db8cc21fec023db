// The xcorr command's choice of the templates whose spectra a batch keeps
// (src/cli/xcorr_batches.hpp: kept_templates), without MPI.
#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "xcorr_batches.hpp"

namespace {

using tessera::cli::xcorr_job::BatchPlan;
using tessera::cli::xcorr_job::kept_templates;

BatchPlan plan(std::uint64_t share, std::uint64_t waiting, std::uint64_t per_template) {
  BatchPlan p;
  p.cache_share_bytes = share;
  p.waiting_bytes = waiting;
  p.bytes_per_template = per_template;
  return p;
}

}  // namespace

// Room for all: every template kept; for none: none.
TEST(KeptTemplates, AllOrNoneAtTheEnds) {
  const std::vector<std::pair<int, int>> local = {{0, 0}, {0, 1}, {1, 2}};
  EXPECT_EQ(kept_templates(plan(1000, 100, 100), 2, 3, local), (std::vector<std::uint8_t>{1, 1, 1}));
  // 2 images take 200 of 450: room for 2 of the 3 templates (250 / 100), each
  // used once: the lower indices.
  EXPECT_EQ(kept_templates(plan(450, 100, 100), 2, 3, local), (std::vector<std::uint8_t>{1, 1, 0}));
  // The images alone fill the share: none kept.
  EXPECT_EQ(kept_templates(plan(200, 100, 100), 2, 3, local), (std::vector<std::uint8_t>{0, 0, 0}));
  EXPECT_EQ(kept_templates(plan(150, 100, 100), 2, 3, local), (std::vector<std::uint8_t>{0, 0, 0}));
}

// Partly: the most used first, ties to the lower index, exactly as many as fit.
TEST(KeptTemplates, TheMostUsedFirst) {
  // Template uses: 0 once, 1 three times, 2 twice, 3 three times, 4 once.
  const std::vector<std::pair<int, int>> local = {{0, 1}, {0, 3}, {1, 1}, {1, 2}, {1, 3},
                                                  {2, 0}, {2, 1}, {2, 2}, {2, 3}, {3, 4}};
  // 4 images (400) in a share of 700: room for 3 templates of 100.
  EXPECT_EQ(kept_templates(plan(700, 100, 100), 4, 5, local), (std::vector<std::uint8_t>{0, 1, 1, 1, 0}));
  // Room for 2: templates 1 and 3 (three uses each), not 2.
  EXPECT_EQ(kept_templates(plan(699, 100, 100), 4, 5, local), (std::vector<std::uint8_t>{0, 1, 0, 1, 0}));
  // Room for 1: the tie between 1 and 3 goes to 1.
  EXPECT_EQ(kept_templates(plan(599, 100, 100), 4, 5, local), (std::vector<std::uint8_t>{0, 1, 0, 0, 0}));
  // Room for 4: template 0 (index 0) before 4 among the single uses.
  EXPECT_EQ(kept_templates(plan(800, 100, 100), 4, 5, local), (std::vector<std::uint8_t>{1, 1, 1, 1, 0}));
}
